"""The simulator tests' own simulator process (one for all their modules), and a reset before each test that asks."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from devtools.processes import ROOT
from simulator_helpers import API_KEY


@pytest.fixture(scope="session")
def base() -> Iterator[str]:
    """Run the simulator as a subprocess and yield its base URL."""
    cmd = [
        sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0",
        "--api-key", API_KEY, "--task-delay", "0.05", "--retry-scale", "0.01",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "simulator did not report that it is listening"
        line = proc.stdout.readline().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:"), line
        assert API_KEY not in line
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
    assert code == 0, "simulator should exit cleanly on SIGTERM"


@pytest.fixture()
def fresh(base: str) -> None:
    """Each test starts from start-up settings and empty stats."""
    requests.post(f"{base}/_sim/reset", timeout=5).raise_for_status()
