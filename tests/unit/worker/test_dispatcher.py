"""The worker's dispatcher (worker/dispatcher.py) over several kinds: a kind whose hands are all busy delays no other
kind's take (sends hanging at BFL, every sender of the account busy: a check the sweep adds is taken as soon as with
sends idle, measured in the same test), and at rest the dispatcher waits in one command for every kind."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from devtools.hanging_bfl import HangingBFL
from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.wakes import LONGEST_WAIT
from helpers import commands_during
from worker import checkers, dispatcher, feeding, kinds, run, sending

DB = 6
# Senders per account, and key A's jobs: more than its senders, so sends stay full while every one of them hangs.
SENDERS = 2
A_JOBS = 2 * SENDERS
# How soon key B's check must have polled BFL once the sweep put it in line.
WITHIN = 0.5


@pytest.fixture()
def hanging():
    bfl = HangingBFL()  # its submissions hang until released; its polls answer Pending at once
    yield bfl
    bfl.stop()


def _queued(svc, key_id: str) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool="default", key_id=key_id,
              input={"prompt": "[pending] sent by a sender"}, created_at=now, updated_at=now)
    svc.jobs.create(job)
    assert not svc.slots.acquire(job, send_here=False)
    return job


def _checked_after(svc, key_id: str) -> float:
    """The seconds from the sweep putting a due job of ``key_id`` in the check line to its poll."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 key_id=key_id, created_at=now, updated_at=now, submitted_at=now,
                                 account=svc.config.accounts[0].name), due=now - 1)
    started = time.monotonic()
    assert sweep(svc).due == 1
    wait_until(lambda: svc.jobs.get(job.id).polls == 1, timeout=5, message=f"{key_id}'s check to poll BFL")
    return time.monotonic() - started


def test_a_kind_whose_hands_all_hang_delays_no_other_kinds_take(make_services, hanging):
    svc = make_services(DB, BFL_API_BASE=hanging.url, API_HOST_ALLOWLIST=hanging.host)
    wakes = run.wakes_for(svc.config)
    started = dispatcher.Dispatcher(wakes, [sending.Sends(svc, SENDERS), checkers.Checks(svc, 2)]).started()
    try:
        idle = _checked_after(svc, "key_b")  # sends idle: nothing in line or being sent

        key_a = key_admin.create_key(svc, {"name": "a"}, time.time())[0].id
        a_jobs = [_queued(svc, key_a) for _ in range(A_JOBS)]
        wait_until(lambda: hanging.hanging == SENDERS, timeout=5, message="every sender in a hanging send")
        full = _checked_after(svc, "key_b")
        # B's check went while every sender still waited for BFL, and A's other jobs waited in line.
        assert hanging.submissions == SENDERS
        assert [svc.jobs.get(job.id).status for job in a_jobs].count(st.QUEUED) == A_JOBS
        hanging.release.set()
        wait_until(lambda: all(svc.jobs.get(job.id).status == st.SUBMITTED for job in a_jobs), timeout=10,
                   message="A's jobs left in line to be sent as the senders free")
    finally:
        hanging.release.set()
        started.request_stop()
        wakes.stop(1)
        started.stop()
    assert idle <= WITHIN and full <= WITHIN, f"B's check polled {idle:.2f} s after its sweep with sends idle, " \
                                              f"{full:.2f} s with every sender hanging"


def test_at_rest_the_dispatcher_waits_for_every_kind_in_one_command(make_services):
    svc = make_services(DB)
    wakes = run.wakes_for(svc.config)
    started: list[dispatcher.Dispatcher] = []

    def rest() -> None:
        started.append(dispatcher.Dispatcher(wakes, kinds.kinds(svc)).started())
        wait_until(lambda: wakes._resting, timeout=5, message="the dispatcher to rest")
        time.sleep(1.5)  # at rest: it sends nothing more

    try:
        sent = [c["command"] for c in commands_during(svc.redis, DB, rest)]
        waits = [command for command in sent if command.startswith("BLPOP")]
        assert len(waits) == 1, sent
        keys = svc.store.keys
        assert sorted(waits[0].split()[1:-1]) == sorted([keys.slot_freed, keys.check_added, keys.notify_added,
                                                         keys.work_added, wakes.nudge_key, wakes.stop_key]), waits
        assert not feeding.WORK_MAY_WAIT.is_set()  # its feed found every line empty
        # Its last command: the wait goes on.
        assert sent[-1] == waits[0]
    finally:
        for one in started:
            one.request_stop()
            wakes.stop(1)
            one.stop()


class _Held(dispatcher.Kind):
    """A kind of one hand, each of whose items waits in it for ``release``; its take hands out what was added."""

    def __init__(self, name: str, cut_by_stop: bool = False):
        super().__init__(name, f"test:{name}:wake", (None,), 1, ThreadPoolExecutor(1), 1.0, cut_by_stop)
        self.items: list[int] = []
        self.ran: list[int] = []
        self.release = threading.Event()

    def take(self, rooms):
        taken = [(None, self.items.pop(0)) for _ in range(min(rooms[None], len(self.items)))]
        return dispatcher.Taken(taken, 0.0 if len(taken) == rooms[None] else LONGEST_WAIT)  # as every kind's take

    def run(self, part, item) -> None:
        self.ran.append(item)
        self.release.wait(10)


def test_a_full_kinds_nudge_lost_with_redis_costs_at_most_the_guard(make_services, monkeypatch):
    """A hand freed in a full kind nudges the dispatcher through Redis; refused (a Redis failing over), the
    dispatcher, resting for the other kinds, still takes the kind's next item within the guard."""
    svc = make_services(DB)
    wakes = run.wakes_for(svc.config)

    def refused(item: str) -> None:
        raise redis.ConnectionError("the primary went away")

    monkeypatch.setattr(wakes, "nudge", refused)
    held, idle = _Held("held"), _Held("idle")
    held.items = [1, 2]
    started = dispatcher.Dispatcher(wakes, [held, idle], guard=0.5).started()
    try:
        wait_until(lambda: held.ran == [1], timeout=5, message="the first item in the kind's one hand")
        wait_until(lambda: any(c["cmd"] == "blpop" and c["db"] == str(DB) for c in svc.redis.client_list()),
                   timeout=5, message="the dispatcher resting for the other kind")
        held.release.set()
        freed = time.monotonic()
        wait_until(lambda: held.ran == [1, 2], timeout=3, message="the next item taken with its nudge lost")
        assert time.monotonic() - freed <= 0.5 + 1.0
    finally:
        held.release.set()
        started.request_stop()
        wakes.stop(1)
        started.stop()


def test_the_first_stop_signal_ends_the_takes_of_the_kinds_a_stop_may_cut_off_alone(make_services):
    """Sends and checks are the kinds whose work a stop may cut off; after the first signal the dispatcher takes none of
    theirs, and still takes every other kind's (a notification attempt, a feed)."""
    svc = make_services(DB)
    assert {kind.name for kind in kinds.kinds(svc) if kind.cut_by_stop} == {"send", "check"}
    wakes = run.wakes_for(svc.config)
    cut, kept = _Held("cut", cut_by_stop=True), _Held("kept")
    cut.release.set()
    kept.release.set()
    started = dispatcher.Dispatcher(wakes, [cut, kept]).started()
    try:
        started.stop_taking(only_cut=True)
        cut.items, kept.items = [1], [2]
        for kind in (cut, kept):
            svc.redis.lpush(kind.wake, 1)
        wait_until(lambda: kept.ran == [2], timeout=5, message="the kept kind's item taken after the first signal")
        # A step more, for the kept kind: the cut kind had its wake-up and two steps, and its item stays where it was.
        kept.items.append(3)
        svc.redis.lpush(kept.wake, 1)
        wait_until(lambda: kept.ran == [2, 3], timeout=5, message="the kept kind's next item")
        assert cut.ran == [] and cut.items == [1]
    finally:
        started.request_stop()
        wakes.stop(1)
        started.stop()
