"""The `fluxhook` command's API commands, run as a real process against the session's stack; its pure helpers.

The operator commands (sweep, doctor) are in test_operator_commands.py.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import api_cli, clean_env, run_cli
from conftest import API_TOKEN
from devtools import settings_file
from devtools.processes import ROOT, free_port
from fluxhook import client as fc
from fluxhook.cli import api_commands, dev_run, exits

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


def test_show_and_list(stack, api, sim):
    job = api.wait_for(api.submit("a listed fox")["id"], "stored")

    shown = api_cli(stack, "show", job["id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == job["id"]

    table = api_cli(stack, "list", "--limit", "5")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "MODEL", "CREATED", "COST", "IMAGE", "/", "ERROR"]
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


def test_api_target():
    dev = {"FLUXHOOK_URL": "http://localhost:8123", "API_TOKENS": "dev-token-1,dev-token-2"}
    assert api_commands.api_target(None, None, {}, dev) == ("http://localhost:8123", "dev-token-1")
    assert api_commands.api_target(None, None, {}, None) == ("http://localhost:8000", None)
    assert api_commands.api_target("http://localhost:8123/", None, {}, dev) == ("http://localhost:8123/", "dev-token-1")
    # What the caller says, then the environment, wins over the dev run.
    assert api_commands.api_target(None, None, {"FLUXHOOK_URL": "https://fh.example", "FLUXHOOK_TOKEN": "t-1"}, dev) == (
        "https://fh.example", "t-1")
    assert api_commands.api_target(None, "mine-123", {}, dev) == ("http://localhost:8123", "mine-123")
    assert api_commands.api_target("https://fh.example", None, {}, dev) == ("https://fh.example", None)
    assert api_commands.api_target(None, None, {"API_TOKENS": "env-token"}, dev) == ("http://localhost:8123", "env-token")


def test_dev_run_file_round_trip_and_privacy(tmp_path):
    settings = {"SECRET_KEY": "s3cr3t with 'quotes' and $dollars", "API_TOKENS": "a,b", "EMPTY": "",
                "REDIS_URL": "redis://:pw@127.0.0.1:6379/0"}
    path = tmp_path / dev_run.DEV_RUN_FILE
    settings_file.write_dev_run(path, {"SECRET_KEY": "old"})
    settings_file.write_dev_run(path, settings)
    assert dev_run.read_dev_run(path) == settings
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [dev_run.DEV_RUN_FILE]  # no temporary file left
    assert dev_run.read_dev_run(tmp_path / "absent.env") is None
    # A shell reads it as the commands do (`set -a; . var/dev-run.env` works too).
    shell = subprocess.run(["sh", "-c", f'. {path} && printf %s "$SECRET_KEY"'], capture_output=True, text=True,
                           timeout=10)
    assert shell.stdout == settings["SECRET_KEY"]
    assert dev_run.dev_run_path({"FLUXHOOK_VAR": str(tmp_path)}) == path
    assert dev_run.dev_run_path({}) == ROOT / "var" / dev_run.DEV_RUN_FILE


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
    assert "unauthorized: send 'Authorization: Bearer <token>'" in result.stderr and "(HTTP 401)" in result.stderr
    assert result.stdout == ""

    result = api_cli(stack, "show", "job_01NOSUCHJOB")
    assert result.returncode == 2 and "not_found:" in result.stderr

    result = api_cli(stack, "submit", "--model", "Not A Model", "--prompt", "x")
    assert result.returncode == 2 and "invalid_request:" in result.stderr

    result = api_cli(stack, "list", "--limit", "500")
    assert result.returncode == 2 and "invalid_request: 'limit' must be between 1 and 100" in result.stderr


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

def test_exit_codes():
    assert [int(code) for code in exits.ExitCode] == [0, 1, 2, 3, 4, 130]
    assert set(exits.EXIT_MEANINGS) == set(exits.ExitCode)
    assert all(f"  {code.value:<4} " in exits.EXIT_CODES_HELP for code in exits.ExitCode)
    refusals = [fc.InvalidRequest("x", status=400), fc.AuthenticationError("x", status=401),
                fc.InsufficientCredits("x", status=402), fc.NotFound("x", status=404), fc.Gone("x", status=410),
                fc.Conflict("x", status=409)]
    assert [api_commands.exit_code_for_error(e) for e in refusals] == [2] * 6
    failures = [fc.ServiceUnavailable("x", status=503), fc.ServiceUnavailable("x"), fc.RateLimited("x", status=429),
                fc.ChecksumMismatch("x")]
    assert [api_commands.exit_code_for_error(e) for e in failures] == [3] * 4
    assert api_commands.exit_code_for_error(fc.WaitTimeout("x", job=fc.Job())) == 4
    assert api_commands.exit_code_for_job({"status": "stored"}) == 0
    assert [api_commands.exit_code_for_job({"status": s}) for s in ("failed", "moderated", "expired")] == [1, 1, 1]
    with pytest.raises(ValueError):
        api_commands.exit_code_for_job({"status": "submitted"})


def test_help_prints_the_exit_codes():
    result = run_cli("--help")
    assert result.returncode == 0 and exits.EXIT_CODES_HELP.strip() in result.stdout
    assert all(name in result.stdout for name in ("submit", "show", "list", "sweep", "doctor"))


def test_format_table():
    table = api_commands.format_table(("ID", "STATUS", "NOTE"), [("job_1", "stored", "png"), ("job_22", None, "")])
    assert table.splitlines() == [
        "ID      STATUS  NOTE",
        "job_1   stored  png",
        "job_22",
    ]
    assert api_commands.format_table(("A", "B"), []) == "A  B"


def test_job_rows():
    stored = {"id": "job_1", "status": "stored", "model": "flux-2-pro", "created_at": "2026-01-01T00:00:00Z",
              "image": {"content_type": "image/png", "width": 64, "height": 48, "size": 1536},
              "cost": {"credits": 6.0, "input_mp": 0.0, "output_mp": 0.75}}
    assert api_commands.job_row(stored) == ["job_1", "stored", "flux-2-pro", "2026-01-01T00:00:00Z", "6",
                                   "png 64x48 1.5 KiB"]
    failed = dict(stored, status="failed", image=None, error={"code": "bfl_error", "message": "x"}, model=None,
                  cost=None)
    assert api_commands.job_row(failed)[1:] == ["failed", "-", "2026-01-01T00:00:00Z", "-", "bfl_error"]
    pending = dict(stored, status="submitted", image=None, error=None, bfl_status="Pending")
    assert api_commands.job_row(pending)[-1] == "BFL: Pending"
    video = dict(stored, image=None, video={"content_type": "video/mp4", "width": 1280, "height": 720,
                                            "size": 3 * 1024 * 1024})
    assert api_commands.job_row(video)[-1] == "mp4 1280x720 3.0 MiB"


def test_output_path(tmp_path):
    assert api_commands.output_path(None, "job_1", "image/jpeg", cwd=tmp_path) == tmp_path / "job_1.jpg"
    assert api_commands.output_path(str(tmp_path), "job_1", "image/webp") == tmp_path / "job_1.webp"
    assert api_commands.output_path("new-dir/", "job_1", "image/png", cwd=tmp_path) == tmp_path / "new-dir" / "job_1.png"
    assert api_commands.output_path("out.png", "job_1", "image/png", cwd=tmp_path) == tmp_path / "out.png"
    assert api_commands.output_path(None, "job_1", "video/mp4", cwd=tmp_path) == tmp_path / "job_1.mp4"
    assert api_commands.file_extension("image/png; charset=binary") == "png"
    assert api_commands.file_extension("application/octet-stream") == "bin"


def test_small_helpers():
    assert api_commands.default_token({"FLUXHOOK_TOKEN": " tok-1 ", "API_TOKENS": "a,b"}) == "tok-1"
    assert api_commands.default_token({"API_TOKENS": " , first-token, second"}) == "first-token"
    assert api_commands.default_token({}) is None
    assert api_commands.human_size(157) == "157 B" and api_commands.human_size(3 * 1024 * 1024) == "3.0 MiB"
    with pytest.raises(exits.CLIError) as bad:
        api_commands.json_object('"text"', "--input-json")
    assert bad.value.exit_code == 2


def test_progress_redraws_on_a_terminal_and_prints_changes_otherwise():
    job = {"id": "job_1", "status": "submitted", "bfl_status": "Pending"}
    plain = io.StringIO()
    progress = api_commands.Progress(plain, tty=False)
    progress.update(job, 0.3)
    progress.update(job, 0.6)  # unchanged: nothing new
    progress.update(dict(job, status="ready", bfl_status="Ready"), 1.2)
    progress.update(dict(job, status="ready", bfl_status="Ready"), 40.0)  # unchanged, but a while later
    progress.finish(dict(job, status="stored", bfl_status="Ready"), 1.5)
    assert plain.getvalue().splitlines() == [
        "job_1 submitted (BFL: Pending) 0.3 s",
        "job_1 ready (BFL: Ready) 1.2 s",
        "job_1 ready (BFL: Ready) 40.0 s",
        "job_1 stored (BFL: Ready) 1.5 s",
    ]
    terminal = io.StringIO()
    progress = api_commands.Progress(terminal, tty=True)
    progress.update(job, 0.3)
    progress.update(job, 0.4, "fluxhook unreachable, retrying")
    progress.finish(dict(job, status="stored"), 0.5)
    assert terminal.getvalue() == ("\r\x1b[K/ job_1 submitted (BFL: Pending) 0.3 s"
                                   "\r\x1b[K- job_1 submitted (BFL: Pending) 0.4 s, fluxhook unreachable, retrying"
                                   "\r\x1b[Kjob_1 stored (BFL: Pending) 0.5 s\n")
