"""`make run` looks after its worker as the worker's supervisor looks after a child: a worker that dies is started
again, and the terminal says which process ended, how, and when it starts again; a worker that cannot stay up (a
configuration error, or ending again and again) is not started for ever: the run says so and stops. Ctrl-C stops
everything even when the terminal's pipe is gone (`make run | tee run.log`, the tee ended by the same Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import requests

from devtools import run
from devtools.processes import group_alive, start_process, wait_until
from devtools.stack import Stack
from helpers import start_make_run


def _state(pid: int) -> str | None:
    """The process's state letter (Z: a zombie, which runs nothing), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _children(parent: int) -> dict[int, str]:
    """The running children of ``parent``, each with its command line."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[1]) == parent:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


def _worker_pid(run_pid: int) -> int | None:
    return next((pid for pid, command in _children(run_pid).items() if " -m worker" in command), None)


def _collect(stream) -> list[str]:
    """Every line ``stream`` prints from now on, as it comes (a pipe read in a thread never blocks the test)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in stream), daemon=True).start()
    return lines


def _events(log: Path) -> list[str]:
    """The event of each JSON line of a log."""
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (ValueError, KeyError, TypeError):
            continue  # not one of the service's lines
    return events


def _said(lines: list[str], *words: str) -> str | None:
    return next((line for line in list(lines) if all(word in line for word in words)), None)


def test_a_killed_worker_is_started_again_says_why_and_sends_the_next_job(tmp_path):
    process, lines = start_make_run(tmp_path)
    stderr = _collect(process.stderr)
    second = None
    try:
        base = re.search(r"fluxhook is running at (http://localhost:\d+)", "\n".join(lines)).group(1)
        token = re.search(r"dev token: (\S+)", "\n".join(lines)).group(1)
        first = _worker_pid(process.pid)
        assert first, _children(process.pid)
        os.kill(first, signal.SIGKILL)

        second = wait_until(lambda: (lambda pid: pid if pid not in (None, first) else None)(_worker_pid(process.pid)),
                            timeout=30, message="a new worker process")
        why = wait_until(lambda: _said(stderr, f"pid {first}"), timeout=5, message="the line saying why")
        assert "the worker process" in why and "was killed by SIGKILL" in why, why
        assert "starting it again in 1 s" in why and "worker.log" in why, why
        # Printed just after the start that the new pid shows.
        wait_until(lambda: _said(stderr, f"the worker process started again (pid {second})"), timeout=5,
                   message="the line saying it started again")

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        answer = api.post(f"{base}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "after a restart"}},
                          timeout=10)
        assert answer.status_code in (200, 201, 202), answer.text
        job = answer.json()
        wait_until(lambda: api.get(f"{base}/v1/jobs/{job['id']}", timeout=5).json()["status"] == "stored",
                   timeout=30, message="the job submitted after the restart to be stored")
        assert _worker_pid(process.pid) == second  # it stayed up
        # The log goes on: the first worker's lines, which tell why it ended, are still there.
        events = _events(tmp_path / "var" / "worker.log")
        assert events.count("worker started") == 2, events
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert _state(second) is None and not group_alive(second)


def test_ctrl_c_stops_everything_when_the_terminal_pipe_is_gone(tmp_path):
    process, _ = start_make_run(tmp_path)
    children = _children(process.pid)
    commands = " | ".join(children.values())
    assert "gunicorn" in commands and " -m worker" in commands and " -m simulator" in commands, commands
    # As `make run 2>&1 | tee run.log` after Ctrl-C: the tee is gone, and "stopping..." goes to a dead pipe.
    process.stdout.close()
    process.stderr.close()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    left = {pid: command for pid, command in children.items() if _state(pid) or group_alive(pid)}
    assert not left, left


def test_the_pause_grows_while_the_worker_keeps_failing_and_the_run_gives_up():
    failures, pauses = 0, []
    for _ in range(run.GIVE_UP_AFTER):
        failures, pause = run.restart_pause(-9, ran=2.0, failures=failures)
        pauses.append(pause)
    assert pauses == [1.0, 2.0, 5.0, 10.0, None]
    # A worker that ran a while before it ended starts the pauses over.
    assert run.restart_pause(1, ran=run.HEALTHY_AFTER, failures=4) == (1, 1.0)
    # A configuration error is read again by every start: not started again, even the first time.
    assert run.restart_pause(run.CONFIG_ERROR, ran=0.5, failures=0) == (1, None)


def _keeper(tmp_path, code: str) -> run.WorkerKeeper:
    """A keeper of a worker that runs the Python ``code``, with the run's own way of starting it."""
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    stack = Stack(env=dict(os.environ), var_dir=tmp_path)
    stack.processes["worker"] = start_process(["sh", "-c", "exec " + command], stack.env,
                                              log_path=str(tmp_path / "worker.log"))
    return run.WorkerKeeper(stack, time.monotonic(), command)


def test_a_worker_with_a_configuration_error_is_not_started_again(tmp_path, capsys):
    keeper = _keeper(tmp_path, "import sys; print('fluxhook worker: configuration error: X is bad', file=sys.stderr);"
                               " sys.exit(2)")
    wait_until(lambda: not keeper.look(), timeout=30, message="the keeper to give up")
    said = capsys.readouterr().err
    assert "exited with code 2" in said and "a configuration error" in said, said
    assert "not starting it again; stopping everything" in said and "X is bad" in said, said
    assert "started again" not in said


def test_a_worker_that_keeps_ending_is_started_again_then_given_up(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run, "restart_delay", lambda failures: 0.0)  # the pauses' lengths are the test above's
    keeper = _keeper(tmp_path, "import sys; print('boom', file=sys.stderr); sys.exit(1)")
    wait_until(lambda: not keeper.look(), timeout=60, message="the keeper to give up")
    said = capsys.readouterr().err.splitlines()
    restarts = run.GIVE_UP_AFTER - 1
    assert sum("exited with code 1" in line and "starting it again in 0 s" in line for line in said) == restarts
    assert sum("the worker process started again (pid" in line for line in said) == restarts
    assert any(f"it ended {run.GIVE_UP_AFTER} times in a row" in line for line in said), said
    # Every start's lines kept in the log.
    assert (tmp_path / "worker.log").read_text().count("boom") == run.GIVE_UP_AFTER
