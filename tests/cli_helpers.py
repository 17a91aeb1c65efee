"""The `fluxhook` command as a real process (``python -m fluxhook.cli``), as the CLI tests and the tests of
what the doctor says run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
