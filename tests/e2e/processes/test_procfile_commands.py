"""The Procfile's two commands, gunicorn's web and ``python -m worker``, as processes: each stops by itself on a bad
environment, with one clear line per bad variable and no secret, and the web command refuses a port another web
process listens on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from devtools.processes import ROOT

MINIMAL = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "BFL_API_KEY": "bfl-api-key-for-tests",
    "SECRET_KEY": "0123456789abcdef0123456789abcdef",  # exactly 32 characters: the shortest that starts
    "API_TOKENS": "token-aaaaaaaa",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bad_environment() -> dict[str, str]:
    """PATH, the other required settings, no SECRET_KEY and a non-integer grace period."""
    result = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(_free_port())}
    result.update({k: v for k, v in MINIMAL.items() if k != "SECRET_KEY"})
    result["REDIS_URL"] = "redis://127.0.0.1:1/0"  # never contacted: the process must stop first
    result["CALLBACK_GRACE_SECONDS"] = "abc"
    return result


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(command, cwd=ROOT, env=env or _bad_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{command} did not stop by itself within 30 s; stderr:\n{stderr}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _assert_stopped_with_clear_lines(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    lines = result.stderr.splitlines()
    assert len([line for line in lines if "SECRET_KEY" in line]) == 1, result.stderr
    assert len([line for line in lines if "CALLBACK_GRACE_SECONDS" in line]) == 1, result.stderr
    assert "Traceback" not in output
    assert MINIMAL["BFL_API_KEY"] not in output
    assert MINIMAL["API_TOKENS"] not in output


def test_gunicorn_web_command_stops_on_bad_config():
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    if not gunicorn.exists():
        pytest.fail(f"{gunicorn} is missing: the virtualenv is not installed")
    result = _run([str(gunicorn), "--config", "python:receiver.gunicorn_conf", "receiver:create_app()"])
    _assert_stopped_with_clear_lines(result)


def test_gunicorn_web_command_refuses_a_port_another_web_process_listens_on():
    # What a forgotten web process holds: with reuse_port, gunicorn alone would share the port with it.
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **MINIMAL, "REDIS_URL": "redis://127.0.0.1:1/0",
           "PORT": str(port), "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}
    try:
        proc = subprocess.run([str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "python:receiver.gunicorn_conf",
                               "receiver:create_app()"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    finally:
        held.close()
    assert proc.returncode == 2, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "cannot listen on" in line] == [
        f"fluxhook web: cannot listen on 127.0.0.1:{port}: Address already in use (another web process?)"]


def test_worker_command_refuses_arguments_it_does_not_know():
    proc = subprocess.run([sys.executable, "-m", "worker", "--burst"], cwd=ROOT, env={**os.environ, **MINIMAL},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "usage: python -m worker (got '--burst')"


def test_worker_command_stops_on_bad_config():
    result = _run([sys.executable, "-m", "worker"])
    _assert_stopped_with_clear_lines(result)


WEB = [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "python:receiver.gunicorn_conf", "receiver:create_app()"]


# Anyone who saw one signed link could find a weak SECRET_KEY offline and sign every other: neither process starts.
@pytest.mark.parametrize("command", [WEB, [sys.executable, "-m", "worker"]], ids=["web", "worker"])
@pytest.mark.parametrize("weak", ["a", "changeme", "0123456789abcdef"])
def test_both_commands_refuse_a_weak_secret_key(command, weak):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(_free_port()), **MINIMAL,
           "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": weak}
    result = _run(command, env)
    assert result.returncode != 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "SECRET_KEY" in line]
    assert "openssl rand -hex 32" in line and f"={weak}" not in line and f": {weak};" not in line, line
    assert "Traceback" not in result.stdout + result.stderr
