"""The `fluxhook` command, run as a real process against the session's stack; and its pure helpers."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.processes import ROOT, free_port
from devtools.stack import SIMULATOR_KEY
from fluxhook import cli
from fluxhook.bfl.client import BFLClient
from fluxhook.config import Config
from fluxhook.errors import BFLAuthFailed, BFLUnavailable
from fluxhook.net.http_client import HTTPClient

from conftest import API_TOKEN


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything the CLI would take a URL or token from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXHOOK_") and k != "API_TOKENS"}
    env["PYTHONPATH"] = str(ROOT)  # `python -m fluxhook.cli` from any directory, without an install
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
            timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fluxhook.cli", *args], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def api_cli(stack, *args: str, token: str = API_TOKEN, **kwargs) -> subprocess.CompletedProcess:
    command, rest = args[0], args[1:]
    return run_cli(command, "--url", stack.base_url, "--token", token, *rest, **kwargs)


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
    assert lines[0].split() == ["ID", "STATUS", "MODEL", "CREATED", "IMAGE", "/", "ERROR"]
    row = next(line for line in lines if line.startswith(job["id"]))
    assert row.split()[:4] == [job["id"], "stored", "flux-2-pro", job["created_at"]]
    assert row.split()[4] == "png"

    raw = api_cli(stack, "list", "--status", "stored", "--limit", "1", "--json")
    assert raw.returncode == 0, raw.stderr
    page = json.loads(raw.stdout)
    assert [j["status"] for j in page["jobs"]] == ["stored"]
    if page["next_cursor"]:
        assert f"--cursor {page['next_cursor']}" not in raw.stderr  # --json prints the raw page only
        more = api_cli(stack, "list", "--status", "stored", "--limit", "1")
        assert f"more: fluxhook list --cursor {page['next_cursor']} --status stored" in more.stderr


def test_image_download_falls_back_to_the_api_and_checks_the_sha256(stack, api, sim, tmp_path):
    job = api.wait_for(api.submit("a fox behind a tunnel")["id"], "stored")
    client = cli.APIClient(stack.base_url, API_TOKEN)
    # PUBLIC_BASE_URL (a tunnel, a proxy) not reachable from here: the image comes from --url with the token.
    unreachable = dict(job, image=dict(job["image"], url=f"http://127.0.0.1:{free_port()}/v1/jobs/x/image"))
    client.save_image(unreachable, tmp_path / "via-api.png")
    assert (tmp_path / "via-api.png").read_bytes() == sim.image_bytes(job["bfl_id"])

    tampered = dict(job, image=dict(job["image"], sha256="0" * 64))
    with pytest.raises(cli.CLIError) as mismatch:
        client.save_image(tampered, tmp_path / "bad.png")
    assert mismatch.value.exit_code == 3 and "does not match" in mismatch.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["via-api.png"]


def test_url_and_token_come_from_the_environment(stack, sim):
    result = run_cli("list", "--limit", "1", env=_clean_env(FLUXHOOK_URL=stack.base_url, FLUXHOOK_TOKEN=API_TOKEN))
    assert result.returncode == 0, result.stderr
    # Without FLUXHOOK_TOKEN, the first of the service's own API_TOKENS.
    result = run_cli("list", "--limit", "1", env=_clean_env(FLUXHOOK_URL=stack.base_url,
                                                           API_TOKENS=f"{API_TOKEN},another-token-123"))
    assert result.returncode == 0, result.stderr
    result = run_cli("list", env=_clean_env(FLUXHOOK_URL=stack.base_url))
    assert result.returncode == 2 and "no API token" in result.stderr


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


def test_unreachable_service_exits_3():
    result = run_cli("show", "job_x", "--url", f"http://127.0.0.1:{free_port()}", "--token", API_TOKEN)
    assert result.returncode == 3
    assert "cannot reach fluxhook at http://127.0.0.1:" in result.stderr


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


# --- operator commands with the service's environment -----------------------------------

def test_sweep_runs_once_and_says_what_it_did(stack):
    result = run_cli("sweep", env=dict(stack.env))
    assert result.returncode == 0, result.stderr
    assert re.match(r"swept: \d+ due \(a check queued for each\), \d+ dispatched \(queued jobs given a free "
                    r"BFL slot\)", result.stdout)
    assert len(result.stdout.splitlines()) == 1


def test_sweep_with_a_bad_configuration_exits_2(stack):
    env = {k: v for k, v in stack.env.items() if k != "REDIS_URL"}
    result = run_cli("sweep", env=env)
    assert result.returncode == 2
    assert "REDIS_URL: is required but not set" in result.stderr


def test_sweep_without_redis_exits_3(stack):
    result = run_cli("sweep", env=dict(stack.env, REDIS_URL=f"redis://:pw-secret@127.0.0.1:{free_port()}/0"))
    assert result.returncode == 3
    assert "redis unreachable at redis://:***@127.0.0.1:" in result.stderr and "pw-secret" not in result.stderr


def _doctor(env: dict[str, str]) -> tuple[int, dict[str, list[str]], str]:
    result = run_cli("doctor", env=env)
    checks: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        state, name, detail = re.fullmatch(r"(\S+)\s+(\S+)\s+(.*)", line).groups()
        checks.setdefault(name, []).append(f"{state} {detail}")
    return result.returncode, checks, result.stdout + result.stderr


def test_doctor_passes_against_the_running_stack(stack, sim):
    code, checks, output = _doctor(dict(stack.env))
    assert code == 0, output
    assert set(checks) == {"config", "redis", "storage", "worker", "bfl"}
    assert all(line.startswith("ok ") for lines in checks.values() for line in lines), output
    assert re.search(r"PING \d+\.\d ms", checks["redis"][0])
    assert "worker(s) alive" in checks["worker"][0]
    assert f"{sim.url} answers; credits: " in checks["bfl"][0]


def test_doctor_names_a_wrong_redis(stack):
    code, checks, output = _doctor(dict(stack.env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    assert code == 1, output
    assert checks["redis"][0].startswith("FAIL redis://127.0.0.1:")
    assert checks["worker"] == ["skip needs Redis"]
    assert checks["storage"][0].startswith("ok ") and checks["bfl"][0].startswith("ok ")


def test_doctor_names_an_unreachable_bfl(stack):
    base = f"http://127.0.0.1:{free_port()}"
    code, checks, output = _doctor(dict(stack.env, BFL_API_BASE=base))
    assert code == 1, output
    assert checks["bfl"] == [f"FAIL {base}: BFL unreachable: ConnectionError"]
    assert checks["redis"][0].startswith("ok ")


def test_doctor_reports_a_refused_key_and_no_credits(stack, sim):
    code, checks, output = _doctor(dict(stack.env, BFL_API_KEY="wrong-key"))
    assert code == 1 and "BFL refused the API key (401)" in checks["bfl"][0], output
    sim.settings(credits=0)
    code, checks, output = _doctor(dict(stack.env))
    assert code == 1 and checks["bfl"][0].startswith("FAIL") and "no credits are left" in checks["bfl"][0], output


def test_doctor_lists_every_configuration_problem(stack):
    code, checks, output = _doctor(dict(stack.env, API_TOKENS="tok en", CALLBACK_GRACE_SECONDS="soon"))
    assert code == 1, output
    assert any("API_TOKENS: every token must be printable" in line for line in checks["config"])
    assert any("CALLBACK_GRACE_SECONDS: must be a whole number" in line for line in checks["config"])
    assert checks["redis"] == ["skip needs a valid configuration"]


def test_doctor_warns_about_a_public_base_url_bfl_cannot_reach():
    # Checked without the network: the BFL check itself would contact api.bfl.ai.
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": "key", "SECRET_KEY": "x" * 32,
                              "API_TOKENS": "token-123456", "PUBLIC_BASE_URL": "http://localhost:8000"})
    lines = [check.line() for check in cli.config_checks(config)]
    assert lines[0].startswith("ok    config    valid (BFL_API_BASE=https://api.bfl.ai")
    assert lines[1].startswith("warn  config    PUBLIC_BASE_URL is http://localhost:8000: BFL cannot call back")


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "fluxhook"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (make installs it: pip install -e .)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "exit codes:" in result.stdout and "doctor" in result.stdout


# --- BFLClient.credits ----------------------------------------------------------------------

def _bfl(base: str, key: str = SIMULATOR_KEY) -> BFLClient:
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": key, "BFL_API_BASE": base,
                              "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456"})
    return BFLClient(config, HTTPClient(), sleep=lambda seconds: None)


def test_credits(sim, spy):
    sim.settings(credits=7)
    assert _bfl(sim.url).credits() == 7.0
    with pytest.raises(BFLAuthFailed):
        _bfl(sim.url, key="wrong-key").credits()
    spy.route("/v1/credits", body=json.dumps({"credits": "lots"}).encode(),
              headers={"Content-Type": "application/json"})
    with pytest.raises(BFLUnavailable):
        _bfl(spy.url).credits()
    spy.route("/v1/credits", body=b'{"credits": 12.5}', headers={"Content-Type": "application/json"})
    assert _bfl(spy.url).credits() == 12.5


# --- pure helpers ---------------------------------------------------------------------------

def test_exit_codes():
    assert [cli.exit_code_for_http(s) for s in (400, 401, 402, 404, 410, 429)] == [2] * 6
    assert [cli.exit_code_for_http(s) for s in (500, 502, 503, None, 302)] == [3] * 5
    assert cli.exit_code_for_job({"status": "stored"}) == 0
    assert [cli.exit_code_for_job({"status": s}) for s in ("failed", "moderated", "expired")] == [1, 1, 1]
    with pytest.raises(ValueError):
        cli.exit_code_for_job({"status": "submitted"})


def test_error_text():
    body = json.dumps({"error": {"code": "not_found", "message": "no job 'x'"}})
    assert cli.error_text(404, body, "application/json") == "not_found: no job 'x'"
    assert cli.error_text(502, b"<html>Bad Gateway</html>", "text/html; charset=utf-8").startswith(
        "http_502: the server answered 502 (text/html), not a fluxhook error")
    assert cli.error_text(500, b"", "").startswith("http_500: the server answered 500 (no content type)")


def test_format_table():
    table = cli.format_table(("ID", "STATUS", "NOTE"), [("job_1", "stored", "png"), ("job_22", None, "")])
    assert table.splitlines() == [
        "ID      STATUS  NOTE",
        "job_1   stored  png",
        "job_22",
    ]
    assert cli.format_table(("A", "B"), []) == "A  B"


def test_job_rows():
    stored = {"id": "job_1", "status": "stored", "model": "flux-2-pro", "created_at": "2026-01-01T00:00:00Z",
              "image": {"content_type": "image/png", "width": 64, "height": 48, "size": 1536}}
    assert cli.job_row(stored) == ["job_1", "stored", "flux-2-pro", "2026-01-01T00:00:00Z", "png 64x48 1.5 KiB"]
    failed = dict(stored, status="failed", image=None, error={"code": "bfl_error", "message": "x"}, model=None)
    assert cli.job_row(failed)[1:] == ["failed", "-", "2026-01-01T00:00:00Z", "bfl_error"]
    pending = dict(stored, status="submitted", image=None, error=None, bfl_status="Pending")
    assert cli.job_row(pending)[-1] == "BFL: Pending"


def test_output_path(tmp_path):
    assert cli.output_path(None, "job_1", "image/jpeg", cwd=tmp_path) == tmp_path / "job_1.jpg"
    assert cli.output_path(str(tmp_path), "job_1", "image/webp") == tmp_path / "job_1.webp"
    assert cli.output_path("new-dir/", "job_1", "image/png", cwd=tmp_path) == tmp_path / "new-dir" / "job_1.png"
    assert cli.output_path("out.png", "job_1", "image/png", cwd=tmp_path) == tmp_path / "out.png"
    assert cli.image_extension("image/png; charset=binary") == "png"
    assert cli.image_extension("application/octet-stream") == "bin"


def test_sweep_summary():
    assert cli.sweep_summary({"due": 2, "dispatched": 0, "notifications": 1}) == (
        "swept: 2 due (a check queued for each), 0 dispatched (queued jobs given a free BFL slot), 1 notifications")


def test_small_helpers():
    assert cli.redact_url("redis://user:secret@example.com:6380/0") == "redis://user:***@example.com:6380/0"
    assert cli.redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert cli.default_token({"FLUXHOOK_TOKEN": " tok-1 ", "API_TOKENS": "a,b"}) == "tok-1"
    assert cli.default_token({"API_TOKENS": " , first-token, second"}) == "first-token"
    assert cli.default_token({}) is None
    assert cli.format_credits(1e6) == "1,000,000" and cli.format_credits(12.5) == "12.50"
    assert cli.human_size(157) == "157 B" and cli.human_size(3 * 1024 * 1024) == "3.0 MiB"
    with pytest.raises(cli.CLIError) as bad:
        cli.json_object('"text"', "--input-json")
    assert bad.value.exit_code == 2


def test_progress_redraws_on_a_terminal_and_prints_changes_otherwise():
    job = {"id": "job_1", "status": "submitted", "bfl_status": "Pending"}
    plain = io.StringIO()
    progress = cli.Progress(plain, tty=False)
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
    progress = cli.Progress(terminal, tty=True)
    progress.update(job, 0.3)
    progress.update(job, 0.4, "fluxhook unreachable, retrying")
    progress.finish(dict(job, status="stored"), 0.5)
    assert terminal.getvalue() == ("\r\x1b[K/ job_1 submitted (BFL: Pending) 0.3 s"
                                   "\r\x1b[K- job_1 submitted (BFL: Pending) 0.4 s, fluxhook unreachable, retrying"
                                   "\r\x1b[Kjob_1 stored (BFL: Pending) 0.5 s\n")
