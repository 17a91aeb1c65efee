"""devtools/processes.py: stopping a process group means every process of it has ended, not only its leader."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis

from devtools.processes import PortTaken, RedisServer, group_alive, stop_processes

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


def test_a_redis_server_never_passes_off_another_on_its_port_as_its_own():
    first = RedisServer().start()
    try:
        with pytest.raises(PortTaken):
            RedisServer(port=first.port).start()  # its address given: it cannot move
        chosen = RedisServer()
        chosen.port = first.port  # as if another pytest process had taken the port it chose meanwhile
        chosen.start()
        try:
            assert chosen.port != first.port
            assert redis.Redis(host="127.0.0.1", port=chosen.port).info("server")["process_id"] == chosen.process.pid
        finally:
            chosen.stop()
    finally:
        first.stop()
