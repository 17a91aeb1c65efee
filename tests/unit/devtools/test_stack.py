"""The dev stack's guard: one stack's worker per Redis database in a process, so that no worker sends the jobs of
another stack's tests under its own settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.stack import Stack

URL = "redis://127.0.0.1:1/9"


def _running_worker() -> subprocess.Popen:
    # A group of its own, as a stack's processes have (Stack.stop stops groups).
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_a_second_stack_may_not_run_a_worker_on_a_database_whose_worker_runs(tmp_path):
    first, second = Stack(env={"REDIS_URL": URL}, var_dir=tmp_path / "a"), Stack(env={"REDIS_URL": URL},
                                                                                  var_dir=tmp_path / "b")
    first.processes["worker"] = _running_worker()
    try:
        first._claim_database()
        with pytest.raises(RuntimeError, match="already runs a worker on Redis database /9"):
            second._claim_database()
        # Another database is free, and so is this one once the first stack has stopped.
        Stack(env={"REDIS_URL": URL.replace("/9", "/10")}, var_dir=tmp_path / "c")._claim_database()
        first.stop()
        second._claim_database()
    finally:
        first.stop()
        second.stop()


def test_a_worker_that_exited_leaves_its_database_free(tmp_path):
    first, second = Stack(env={"REDIS_URL": URL}, var_dir=tmp_path / "a"), Stack(env={"REDIS_URL": URL},
                                                                                  var_dir=tmp_path / "b")
    first.processes["worker"] = subprocess.Popen([sys.executable, "-c", "pass"])
    first.processes["worker"].wait()
    first._claim_database()
    second._claim_database()
    second.stop()
