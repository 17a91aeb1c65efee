"""The benchmarks and the soak check for the programs they run before anything else: a missing one stops
them at once with one line saying what to install, not a traceback minutes later (wrk's FileNotFoundError,
then a KeyError on the figures it never printed).

The programs are all installed here; their absence is a PATH that holds none of them (the interpreter is
started by its full path)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from devtools.processes import ROOT, require_tools


@pytest.mark.parametrize(("command", "line"), [
    (["bench.compat"], "bench-compat needs wrk: apt-get install wrk"),
    (["bench.suite", "--quick"], "bench-suite needs wrk: apt-get install wrk"),
    (["bench.fairness", "--baseline-tree", "{tmp}/no-checkout"], "bench-fairness needs git: apt-get install git"),
    (["bench.hostile", "--old-tree", "{tmp}/no-checkout"], "bench-hostile needs git: apt-get install git"),
    (["bench.latency", "--baseline-tree", "{tmp}/no-checkout"], "bench-latency needs git: apt-get install git"),
    (["devtools.soak"], "soak needs pgrep: apt-get install procps"),
])
def test_a_missing_program_stops_the_run_at_once_in_one_line(tmp_path, command, line):
    empty = tmp_path / "bin"
    empty.mkdir()
    args = [arg.format(tmp=tmp_path) for arg in command]
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env={"PATH": str(empty)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert (done.stdout, done.stderr) == ("", line + "\n")
    assert not (tmp_path / "no-checkout").exists()  # stopped before it made anything


def test_programs_on_path_pass(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if not (shutil.which("wrk") and shutil.which("git")):
        pytest.skip("wrk or git is not installed here")
    assert require_tools("bench-suite", "wrk", "git") is None


def test_every_missing_program_is_named_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:
        require_tools("make something", "wrk", "pgrep", "git")
    assert str(stopped.value) == "make something needs wrk and pgrep and git: apt-get install wrk procps git"
