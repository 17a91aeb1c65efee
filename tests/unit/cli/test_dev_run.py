"""The settings a running ``make run`` leaves for the command (fluxhook/cli/dev_run.py): written privately, read back
whole, and readable by a shell."""

from __future__ import annotations

import subprocess

from devtools import settings_file
from devtools.processes import ROOT
from fluxhook.cli import dev_run


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
