"""BFL's official Python SDK (``blackforest`` on PyPI) in a virtual environment of its own, for the tests that run
it as an app does (tests/test_bfl_sdk.py, tests/test_bfl_sdk_docs.py): its release pins Pillow 10.4, which
fluxhook's own environment (Pillow 13) cannot share. Made once, from PyPI, and kept in pytest's cache directory
(``.pytest_cache``; the temporary directory without one) for later runs.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SDK = "blackforest==0.1.3"


@pytest.fixture(scope="session")
def sdk_python(request) -> str:
    """The interpreter of a virtual environment holding BFL's SDK (made once, then reused)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    home = Path(cache.mkdir("blackforest-sdk")) if cache else Path(tempfile.gettempdir()) / "fluxhook-blackforest-sdk"
    home.mkdir(parents=True, exist_ok=True)
    python = home / "venv" / "bin" / "python"
    done = home / "venv" / f".installed-{SDK}"
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once make it once
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(home / "venv")], check=True)
            installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                        "--only-binary=:all:", SDK], capture_output=True, text=True, timeout=600)
            if installed.returncode != 0:
                pytest.fail(f"could not install {SDK} from PyPI: {installed.stderr[-2000:]}")
            done.touch()
    return str(python)
