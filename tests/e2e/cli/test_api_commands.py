"""The `fluxhook` command's API commands, run as a real process against the session's stack; ``wait`` with a second
key, to which the job does not exist.

The operator commands (sweep, doctor) are in test_operator_commands.py; the pure helpers in tests/unit/cli/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from cli_helpers import api_cli, clean_env, run_cli, started_cli
from conftest import API_TOKEN
from devtools import settings_file
from devtools.processes import free_port, wait_until
from fluxhook import client as fc
from fluxhook.cli import dev_run, exits
from fluxhook.store.watching import Watching
from key_helpers import make_key

# --- API commands against the running stack --------------------------------------------

def test_submit_prints_the_job(stack, sim):
    result = api_cli(stack, "submit", "--prompt", "a red fox", "--input-json", '{"width": 512}',
                     "--metadata-json", '{"user": 42}')
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["id"].startswith("job_") and job["status"] in ("queued", "submitted")
    assert job["model"] == "flux-2-pro" and job["metadata"] == {"user": 42}
    assert sim.task(job["bfl_id"])["prompt"] == "a red fox"


def test_submit_wait_saves_the_image_next_to_the_caller(stack, sim, tmp_path):
    result = api_cli(stack, "submit", "--prompt", "a lighthouse at dawn", "--wait", "--timeout", "60", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "stored"
    saved = tmp_path / f"{job['id']}.png"
    assert saved.read_bytes() == sim.image_bytes(job["bfl_id"])
    assert f"saved {saved}" in result.stderr
    # Not a terminal: the progress is plain lines, one per status seen, ending with the final one.
    assert re.search(rf"{job['id']} stored \(BFL: Ready\) \d+\.\d s\n", result.stderr)
    assert "\r" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [saved.name]  # no temp file left behind


def test_submit_wait_output_to_a_file_and_to_a_directory(stack, sim, tmp_path):
    target = tmp_path / "images" / "fox.png"
    result = api_cli(stack, "submit", "--prompt", "a fox", "--wait", "-o", str(target))
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert target.read_bytes() == sim.image_bytes(job["bfl_id"])

    result = api_cli(stack, "submit", "--prompt", "[jpeg] a fox", "--wait", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (tmp_path / f"{job['id']}.jpg").read_bytes() == sim.image_bytes(job["bfl_id"])


def test_submit_wait_for_a_failing_task_exits_1(stack, sim, tmp_path):
    result = api_cli(stack, "submit", "--prompt", "[error] this one fails", "--wait", "--timeout", "60", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "failed"
    assert f"job {job['id']} ended failed: bfl_error" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_submit_wait_gives_up_after_its_timeout_with_exit_4(stack, sim):
    result = api_cli(stack, "submit", "--prompt", "[pending] never ends", "--wait", "--timeout", "1")
    assert result.returncode == 4, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "submitted"
    assert f"fluxhook show {job['id']}" in result.stderr


def test_wait_follows_a_job_made_before_until_it_is_stored_and_saves_it_and_the_other_key_cannot(stack, api, sim,
                                                                                                   tmp_path):
    mine, a = make_key(api)
    other, b = make_key(api)
    job = a.submit("[pending] waited for later")
    a.wait_for(job["id"], "submitted")
    marks = Watching(redis.Redis.from_url(stack.env["REDIS_URL"]))

    # The other key: no such job to wait on, nothing written, and the job not watched (a wait watches it).
    refused = api_cli(stack, "wait", job["id"], "--timeout", "5", cwd=tmp_path, token=other["key"])
    assert refused.returncode == 2 and "not_found:" in refused.stderr and "(HTTP 404)" in refused.stderr
    assert refused.stdout == "" and list(tmp_path.iterdir()) == [] and marks.watched_for(job["id"]) == 0
    assert b.get("/v1/jobs").json()["jobs"] == []

    target = tmp_path / "later.png"
    waiting = started_cli("wait", job["id"], "-o", str(target), "--url", stack.base_url, "--token", mine["key"])
    try:
        wait_until(lambda: marks.watched_for(job["id"]) > 0, timeout=30, message="the command waiting on the job")
        sim.complete(job["bfl_id"])
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()

    # As submit --wait ends: the job on stdout, its status line and the file saved on stderr.
    assert waiting.returncode == 0, err
    assert json.loads(out)["status"] == "stored" and target.read_bytes() == sim.image_bytes(job["bfl_id"])
    assert re.search(rf"^{job['id']} stored \(BFL: Ready\) \d+\.\d s$", err, re.M) and f"saved {target}" in err
    assert b.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_wait_exits_1_for_a_job_that_ended_without_an_image_and_4_after_its_timeout(stack, api, sim, tmp_path):
    mine, a = make_key(api)
    other, b = make_key(api)
    failing = a.submit("[error] this one fails")
    held = a.submit("[pending] never ends")

    failed = api_cli(stack, "wait", failing["id"], cwd=tmp_path, token=mine["key"])
    timed_out = api_cli(stack, "wait", held["id"], "--timeout", "1", cwd=tmp_path, token=mine["key"])

    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["status"] == "failed"
    assert f"job {failing['id']} ended failed: bfl_error" in failed.stderr
    assert timed_out.returncode == 4, timed_out.stderr
    assert json.loads(timed_out.stdout)["status"] == "submitted"
    assert (f"job {held['id']} is still submitted after 1 s; it goes on: fluxhook show {held['id']}"
            in timed_out.stderr)
    assert list(tmp_path.iterdir()) == []
    # The other key's wait on either is refused, and leaves the held one as it was.
    for job in (failing, held):
        refused = api_cli(stack, "wait", job["id"], "--timeout", "1", token=other["key"])
        assert refused.returncode == 2 and "not_found:" in refused.stderr and refused.stdout == ""
    assert a.job(held["id"])["status"] == "submitted" and b.get("/v1/jobs").json()["jobs"] == []


def test_show_and_list(stack, api, sim):
    job = api.wait_for(api.submit("a listed fox")["id"], "stored")

    shown = api_cli(stack, "show", job["id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == job["id"]

    table = api_cli(stack, "list", "--limit", "5")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "MODEL", "CREATED", "COST", "IMAGE", "/", "ERROR", "/", "WAITING"]
    row = next(line for line in lines if line.startswith(job["id"]))
    assert row.split()[:4] == [job["id"], "stored", "flux-2-pro", job["created_at"]]
    assert row.split()[5] == "png"

    other = api.submit("[pending] another model", model="flux-kontext-pro")
    by_model = api_cli(stack, "list", "--model", "flux-kontext-pro", "--limit", "3")
    assert by_model.returncode == 0, by_model.stderr
    rows = by_model.stdout.splitlines()[1:]
    assert rows[0].startswith(other["id"]) and all(row.split()[2] == "flux-kontext-pro" for row in rows)

    raw = api_cli(stack, "list", "--status", "stored", "--limit", "1", "--json")
    assert raw.returncode == 0, raw.stderr
    page = json.loads(raw.stdout)
    assert [j["status"] for j in page["jobs"]] == ["stored"]
    if page["next_cursor"]:
        assert f"--cursor {page['next_cursor']}" not in raw.stderr  # --json prints the raw page only
        more = api_cli(stack, "list", "--status", "stored", "--limit", "1")
        assert f"more: fluxhook list --cursor {page['next_cursor']} --status stored" in more.stderr


def test_url_and_token_come_from_the_environment(stack, sim):
    result = run_cli("list", "--limit", "1", env=clean_env(FLUXHOOK_URL=stack.base_url, FLUXHOOK_TOKEN=API_TOKEN))
    assert result.returncode == 0, result.stderr
    # Without FLUXHOOK_TOKEN, the first of the service's own API_TOKENS.
    result = run_cli("list", "--limit", "1", env=clean_env(FLUXHOOK_URL=stack.base_url,
                                                           API_TOKENS=f"{API_TOKEN},another-token-123"))
    assert result.returncode == 0, result.stderr
    result = run_cli("list", env=clean_env(FLUXHOOK_URL=stack.base_url))
    assert result.returncode == 2 and "no API token" in result.stderr


def test_url_and_token_default_to_the_running_dev_run(stack, sim, tmp_path):
    # What devtools/run.py leaves in var/ while `make run` runs.
    settings_file.write_dev_run(tmp_path / dev_run.DEV_RUN_FILE, {"FLUXHOOK_URL": stack.base_url,
                                                    "API_TOKENS": f"{API_TOKEN},second-token-abcdef"})
    job = fc.Client(stack.base_url, API_TOKEN).submit("flux-2-pro", {"prompt": "[pending] found via make run"})
    result = run_cli("show", job.id, env=clean_env(FLUXHOOK_VAR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == job.id
    # Another URL never gets the dev run's token.
    elsewhere = f"http://127.0.0.1:{free_port()}"
    result = run_cli("show", job.id, "--url", elsewhere, env=clean_env(FLUXHOOK_VAR=str(tmp_path)))
    assert result.returncode == 2 and "no API token" in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "fluxhook"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (make installs it: pip install -e .)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "exit codes:" in result.stdout and "doctor" in result.stdout


def test_api_refusals_exit_2_with_the_error_code(stack, sim):
    result = api_cli(stack, "show", "job_nope", token="wrong-token-123")
    assert result.returncode == 2
    assert "unauthorized: the token sent was not recognised" in result.stderr and "(HTTP 401)" in result.stderr
    assert result.stdout == ""

    result = api_cli(stack, "show", "job_01NOSUCHJOB")
    assert result.returncode == 2 and "not_found:" in result.stderr

    result = api_cli(stack, "submit", "--model", "Not A Model", "--prompt", "x")
    assert result.returncode == 2 and "unknown_model:" in result.stderr

    result = api_cli(stack, "list", "--limit", "500")
    assert result.returncode == 2
    assert "invalid_request: 'limit' is '500': it must be a whole number from 1 to 100" in result.stderr


def test_insufficient_credits_is_a_refusal(stack, sim):
    sim.settings(credits=0)
    result = api_cli(stack, "submit", "--prompt", "no money")
    assert result.returncode == 2 and "insufficient_credits:" in result.stderr and "(HTTP 402)" in result.stderr


def test_unreachable_service_exits_3_naming_the_url():
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = run_cli("show", "job_x", "--url", nowhere, "--token", API_TOKEN)
    assert result.returncode == 3
    assert f"cannot reach fluxhook at {nowhere}" in result.stderr


def test_url_and_token_go_before_or_after_the_command(stack, sim):
    job = fc.Client(stack.base_url, API_TOKEN).submit("flux-2-pro", {"prompt": "[pending] either side"})
    before = run_cli("--url", stack.base_url, "--token", API_TOKEN, "show", job.id)
    after = run_cli("show", job.id, "--url", stack.base_url, "--token", API_TOKEN)
    split = run_cli("--url", stack.base_url, "show", job.id, "--token", API_TOKEN)
    assert [r.returncode for r in (before, after, split)] == [0, 0, 0], (before.stderr, after.stderr, split.stderr)
    assert {json.loads(r.stdout)["id"] for r in (before, after, split)} == {job.id}
    # Given on both sides, the one after the command wins (it is the nearer).
    nowhere = f"http://127.0.0.1:{free_port()}"
    both = run_cli("--url", stack.base_url, "show", job.id, "--url", nowhere, "--token", API_TOKEN)
    assert both.returncode == 3 and f"cannot reach fluxhook at {nowhere}" in both.stderr


def test_usage_errors_exit_2_before_any_request():
    nowhere = ("--url", f"http://127.0.0.1:{free_port()}", "--token", API_TOKEN)
    cases = [
        (["submit", *nowhere], "--prompt"),
        (["submit", "--prompt", "x", "--output", "a.png", *nowhere], "go with --wait"),
        (["submit", "--prompt", "x", "--input-json", "[1]", *nowhere], "must be a JSON object"),
        (["submit", "--prompt", "x", "--metadata-json", "{nope", *nowhere], "not valid JSON"),
        (["submit", "--prompt", "x", "--url", "ftp://host", "--token", API_TOKEN], "--url must be"),
        (["list", "--status", "nonsense", *nowhere], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ]
    for argv, message in cases:
        result = run_cli(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        assert message in result.stderr, (argv, result.stderr)


# --- pure helpers ---------------------------------------------------------------------------


def test_help_prints_the_exit_codes():
    result = run_cli("--help")
    assert result.returncode == 0 and exits.EXIT_CODES_HELP.strip() in result.stdout
    assert all(name in result.stdout for name in ("submit", "show", "list", "sweep", "doctor"))
