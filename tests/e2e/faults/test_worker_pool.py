"""A pool of workers under one command (WORKER_PROCESSES=2): its members run side by side, stop warmly with their
supervisor and by themselves without it, and one that dies is replaced. Each test a stack of its own
(fault_helpers), on a Redis of its own."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from rq import Worker

from conftest import API
from devtools.processes import wait_until

from .fault_helpers import DOWNLOAD_LANES, FaultStack, children, handed_back_downloads, stored_exactly_once


def _members(stack: FaultStack) -> set[int]:
    return children(stack.processes["worker"].pid)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _busy_workers(stack: FaultStack) -> int:
    return sum(w.get_state() == "busy" for w in Worker.all(connection=stack.db()))


def _registered(stack: FaultStack) -> bool:
    """Both members past their start (a migration's lock, if they took it, given back) and taking work."""
    members = _members(stack)
    return len(members) == 2 and {w.pid for w in Worker.all(connection=stack.db())} == members


def test_a_pool_runs_its_members_side_by_side(pooled, sim):
    api = API(pooled.base_url)
    wait_until(lambda: _registered(pooled), timeout=30, message="both members registered with RQ")
    sim.settings(delivery_delay=1.5)
    jobs = [api.submit(f"pooled {n}") for n in range(2)]
    # One download each, at the same time: two tasks in hand under one worker command.
    wait_until(lambda: _busy_workers(pooled) == 2, timeout=20, message="both members busy at once")
    sim.settings(delivery_delay=0)
    stored_exactly_once(api, sim, jobs, pooled)


def _busy_members(stack: FaultStack) -> set[int]:
    """The member processes with a task in hand: each member's lanes are RQ workers named by its pid."""
    return {w.pid for w in Worker.all(connection=stack.db()) if w.get_state() == "busy"}


def test_sigterm_to_a_pool_stops_every_member_warmly_and_loses_nothing(pooled, sim):
    api = API(pooled.base_url)
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    members = _members(pooled)
    # One download more than a member has lanes, so no member can hold them all; each longer than the stop's
    # grace (holds.IMMINENT_SHUTDOWN_DELAY), so every one in hand is cut off and must be handed back.
    sim.settings(delivery_delay=60.0)
    jobs = [api.submit(f"pool deploy {n}") for n in range(DOWNLOAD_LANES + 1)]
    # Started, they cannot end before the stop: each is in hand, and both members hold some.
    wait_until(lambda: _busy_members(pooled) == members and all(api.job(j["id"])["attempts"]["downloads"] for j in jobs),
               timeout=30, message="every download started, both members at one")
    started = time.monotonic()
    # To the whole process group, as Heroku does: members get SIGTERM too, and must not take it as a second stop.
    assert pooled.kill("worker", signal.SIGTERM) == 0
    assert time.monotonic() - started < 30
    assert not any(_running(pid) for pid in members)
    log = (pooled.var_dir / "worker.log").read_text()
    assert "cold shut down" not in log
    assert "did not stop in time" not in log  # warmly: no member outlived its supervisor's wait, to be killed
    assert handed_back_downloads(log) == sorted(f"download-{j['id']}" for j in jobs)  # each once
    sim.settings(delivery_delay=0)
    pooled.start("worker")
    stored_exactly_once(api, sim, jobs, pooled)


def test_members_stop_by_themselves_when_their_supervisor_is_killed(pooled):
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    members = _members(pooled)
    supervisor = pooled.processes.pop("worker")
    os.kill(supervisor.pid, signal.SIGKILL)  # the supervisor alone: its members are left behind
    supervisor.wait(timeout=10)
    wait_until(lambda: not any(_running(pid) for pid in members), timeout=30, message="the members to stop")


def test_a_member_that_dies_is_replaced(pooled, sim):
    api = API(pooled.base_url)
    # A member killed while it migrated holds the other for the migration lock's lease (a unit test's subject,
    # tests/unit/store/test_migrations.py): this one is killed while it runs.
    wait_until(lambda: _registered(pooled), timeout=30, message="both members registered with RQ")
    killed = min(_members(pooled))
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: len(_members(pooled)) == 2 and killed not in _members(pooled), timeout=30,
               message="a new member in place of the killed one")
    job = api.submit("after a member died")
    assert api.wait_for(job["id"], timeout=30)["status"] == "stored"
