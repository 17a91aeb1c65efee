"""devtools/processes.py: stopping a process group means every process of it has ended, not only its leader."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis

from devtools.processes import ROOT, XDIST_PORTS, XDIST_PORTS_EACH, PortTaken, RedisServer, free_port, group_alive, stop_processes

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


def test_each_xdist_process_takes_ports_from_a_range_of_its_own(monkeypatch):
    # A port one pytest process frees (a Redis it restarts) must never be the next another one is handed.
    taken = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        taken[worker] = {free_port() for _ in range(20)}
    assert all(XDIST_PORTS <= port < XDIST_PORTS + XDIST_PORTS_EACH for port in taken["gw0"])
    assert all(XDIST_PORTS + XDIST_PORTS_EACH <= port < XDIST_PORTS + 2 * XDIST_PORTS_EACH for port in taken["gw1"])
    assert len(taken["gw0"]) == len(taken["gw1"]) == 20


def test_a_process_a_test_starts_never_picks_a_port_the_test_picked_for_a_server_not_started_yet(monkeypatch):
    # `make run` started by a test picks its Redis's and simulator's ports while the web's, the test's pick, is unbound.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    picked_by_test = {free_port() for _ in range(XDIST_PORTS_EACH)}  # round its whole turn, as a long run does
    child = subprocess.run([sys.executable, "-c", "from devtools.processes import free_port\n"
                            "print(*(free_port() for _ in range(5)))"],
                           cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    picked_by_child = {int(port) for port in child.stdout.split()}
    assert len(picked_by_child) == 5 and not picked_by_child & picked_by_test, (child.stdout, child.stderr)
    assert all(XDIST_PORTS <= port < XDIST_PORTS + XDIST_PORTS_EACH for port in picked_by_child)


def test_two_processes_started_one_after_the_other_are_not_handed_the_same_ports_in_the_same_order(monkeypatch):
    # Two `make run`s of one test in turn: the second's first ports are not the ones the first just freed.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    picks = [subprocess.run([sys.executable, "-c", "from devtools.processes import free_port\n"
                             "print(*(free_port() for _ in range(3)))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30, check=True).stdout.split()
             for _ in range(2)]
    assert len(picks[0]) == len(picks[1]) == 3 and picks[0] != picks[1], picks
