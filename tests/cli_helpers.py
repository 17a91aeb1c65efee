"""The `fluxhook` command as a real process (``python -m fluxhook.cli``), as the CLI tests and the tests of
what the doctor says run it."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import API_TOKEN
from devtools.processes import ROOT

# Where these tests' commands look for a dev run's settings: nowhere, unless a test puts a file there.
NO_DEV_RUN = ROOT / "var" / "no-such-dev-run"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything the CLI would take a URL or token from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXHOOK_") and k != "API_TOKENS"}
    env["PYTHONPATH"] = str(ROOT)  # `python -m fluxhook.cli` from any directory, without an install
    env["FLUXHOOK_VAR"] = str(NO_DEV_RUN)  # never a `make run` someone has running in this checkout
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
            timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fluxhook.cli", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def started_cli(*args: str, stderr: int = subprocess.PIPE) -> subprocess.Popen:
    """The command running on, its stdout (and unless given, its stderr) a pipe of text. As a terminal runs a command
    in the foreground: Ctrl-C (SIGINT) at its default, whatever this process inherited (a suite started in the
    background by a shell ignores SIGINT, and so would the command)."""
    return subprocess.Popen([sys.executable, "-m", "fluxhook.cli", *args], cwd=ROOT, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


class FullStderr:
    """A pipe filled before the command starts, as its stderr: the command's first write there blocks, mid-line,
    until ``read`` empties it; so a signal can be sent while a given line is being written."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)
        self.filler = 0
        for size in (4096, 1):  # pages, then the last bytes of the last page
            try:
                while True:
                    self.filler += os.write(self.write_end, b"." * size)
            except BlockingIOError:
                pass
        os.set_blocking(self.write_end, True)

    def start(self, *args: str) -> subprocess.Popen:
        try:
            return started_cli(*args, stderr=self.write_end)
        finally:
            os.close(self.write_end)  # the command's copy is the only writer left: its exit ends the pipe

    @staticmethod
    def writing(process: subprocess.Popen) -> bool:
        """Whether ``process`` is blocked writing to a full pipe: its stderr, the only full pipe it has."""
        return Path(f"/proc/{process.pid}/wchan").read_text().endswith("pipe_write")

    def read(self, timeout: float = 60) -> str:
        """All the command wrote to stderr, once it has exited."""
        chunks, deadline = [], time.monotonic() + timeout
        try:
            while select.select([self.read_end], [], [], max(deadline - time.monotonic(), 0))[0]:
                chunk = os.read(self.read_end, 65536)
                if not chunk:
                    return b"".join(chunks)[self.filler:].decode()
                chunks.append(chunk)
            raise TimeoutError(f"the command's stderr did not end within {timeout} s")
        finally:
            os.close(self.read_end)


def api_cli(stack, *args: str, token: str = API_TOKEN, **kwargs) -> subprocess.CompletedProcess:
    command, rest = args[0], args[1:]
    return run_cli(command, "--url", stack.base_url, "--token", token, *rest, **kwargs)


def operator_cli(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    """The command with ``env`` for all its settings (and no dev run's unless FLUXHOOK_VAR names one)."""
    env = {"FLUXHOOK_VAR": str(NO_DEV_RUN), **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fluxhook.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def bare_env(**extra: str) -> dict[str, str]:
    """An environment with none of the service's settings, as in a new terminal next to `make run`."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(extra)
    return env


def doctor(env: dict[str, str]) -> tuple[int, dict[str, list[str]], str]:
    """``fluxhook doctor``'s exit code, its checks by name, and all it printed."""
    result = operator_cli("doctor", env=env)
    checks: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        state, name, detail = re.fullmatch(r"(\S+)\s+(\S+)\s+(.*)", line).groups()
        checks.setdefault(name, []).append(f"{state} {detail}")
    return result.returncode, checks, result.stdout + result.stderr
