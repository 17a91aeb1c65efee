"""devtools/processes.py: stopping a process group means every process of it has ended, not only its leader."""

from __future__ import annotations

import subprocess
import sys
import time

from devtools.processes import group_alive, stop_processes

# A leader that ends at once on SIGTERM, and a child of its group that takes a second longer to finish.
LINGERING_CHILD = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, lambda *_: None); "
                                         "print('ready', flush=True); time.sleep(1)"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""


def test_a_stopped_group_has_no_process_left_though_its_leader_ended_first():
    leader = subprocess.Popen([sys.executable, "-c", LINGERING_CHILD], start_new_session=True, stdout=subprocess.PIPE)
    assert leader.stdout is not None and leader.stdout.readline() == b"ready\n"  # the child's handler is set
    started = time.monotonic()

    stop_processes([leader], timeout=10)

    assert not group_alive(leader.pid)
    assert time.monotonic() - started > 0.5  # it waited for the child, which outlived its leader
