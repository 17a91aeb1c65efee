"""The worker's senders (worker/sending.py, a kind of worker/dispatcher.py): a slot is taken only when a sender can
send its job at once, several submissions are under way at once, freed slots go on without a sweep, and with no job in
a line the dispatcher waits for one to join. Against the suite's simulator answering each submission after a delay, as
BFL does."""

from __future__ import annotations

import threading
import time

import pytest

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.holds import SLOT_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import key_admin
from helpers import commands_during
from slot_helpers import in_flight
from worker import dispatcher, run, sending


@pytest.fixture()
def services(make_services, sim):
    """Services on database 6 with 4 BFL slots; the simulator answers a submission after 0.5 s."""
    sim.settings(submit_delay=0.5, task_delay=None)  # tasks stay Pending: their slots stay held
    yield lambda **env: make_services(6, BFL_MAX_ACTIVE="4", **env)


def _queue(svc, count: int, key_id: str | None = None) -> list[Job]:
    jobs = []
    for _ in range(count):
        job = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro", pool="default", key_id=key_id,
                  input={"prompt": "[pending] sent by a sender"}, created_at=time.time(), updated_at=time.time())
        svc.jobs.create(job)
        assert not svc.slots.acquire(job, send_here=False)
        jobs.append(job)
    return jobs


def _statuses(svc, jobs: list[Job]) -> list[str]:
    return [svc.jobs.get(job.id).status for job in jobs]


def _two_keys(svc) -> tuple[str, str]:
    key_a, key_b = (key_admin.create_key(svc, {"name": name}, time.time())[0].id for name in ("a", "b"))
    return key_a, key_b


def _start(svc, senders: int) -> dispatcher.Dispatcher:
    """A dispatcher of sends alone, ``senders`` for each account."""
    return dispatcher.Dispatcher(run.wakes_for(svc.config), [sending.Sends(svc, senders)]).started()


def _hold_every_slot(svc, key_id: str, senders: int) -> tuple[list[Job], dispatcher.Dispatcher]:
    """Key ``key_id``'s 4 jobs sent by started senders, each holding one of the 4 slots at BFL."""
    jobs = _queue(svc, 4, key_id)
    started = _start(svc, senders)
    try:
        wait_until(lambda: _statuses(svc, jobs) == [st.SUBMITTED] * 4, timeout=10, message="every slot at BFL")
    except BaseException:
        started.stop()
        raise
    return jobs, started


def test_two_senders_hold_at_most_two_slots_while_they_send(services, sim):
    svc = services()
    jobs = _queue(svc, 6)
    senders = _start(svc, 2)
    try:
        peak = 0
        deadline = time.monotonic() + 10
        while _statuses(svc, jobs).count(st.SUBMITTED) < 4 and time.monotonic() < deadline:
            # Every hold is read before every status: a job counted held a slot before the statuses were read
            # and was still queued after, so it was being sent at that instant (one read per job would count a
            # sender's job and, a read later, its next one).
            held = [job for job in jobs if svc.slots.holds(job)]
            sending_now = sum(1 for job in held if svc.jobs.get(job.id).status == st.QUEUED)
            peak = max(peak, sending_now)
            time.sleep(0.02)
        # Every slot taken is a task being sent (at most the two senders') or at BFL.
        assert 1 <= peak <= 2
        assert _statuses(svc, jobs).count(st.SUBMITTED) == 4  # all 4 slots busy at BFL
        assert in_flight(svc.slots, "default") == 4
    finally:
        senders.stop()


def test_submissions_are_sent_side_by_side_not_one_after_another(services, sim):
    svc = services()
    jobs = _queue(svc, 4)
    started = time.monotonic()
    senders = _start(svc, 4)
    try:
        wait_until(lambda: _statuses(svc, jobs) == [st.SUBMITTED] * 4, timeout=10, message="4 jobs at BFL")
        # Four answers of 0.5 s each, one after another, would take 2 s.
        assert time.monotonic() - started < 1.6
    finally:
        senders.stop()


def test_a_freed_slot_goes_to_the_next_turn_without_a_sweep(services, sim):
    svc = services()
    key_a, key_b = _two_keys(svc)
    first, senders = _hold_every_slot(svc, key_a, 4)
    try:
        a_more, b_one = _queue(svc, 3, key_a), _queue(svc, 1, key_b)
        assert svc.jobs.transition(first[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
        # Key B's job takes the freed slot, its turn before key A's backlog.
        wait_until(lambda: svc.jobs.get(b_one[0].id).status == st.SUBMITTED, timeout=5, message="B's job sent")
        assert _statuses(svc, a_more) == [st.QUEUED] * 3
    finally:
        senders.stop()


def test_stopping_takes_no_more_turns_and_lets_the_sends_under_way_finish(services, sim):
    svc = services()
    jobs = _queue(svc, 2)
    senders = _start(svc, 1)
    wait_until(lambda: senders.busy() == 1, timeout=5, message="one submission under way")
    senders.stop()
    assert not senders.is_alive() and senders.busy() == 0
    assert sorted(_statuses(svc, jobs)) == [st.QUEUED, st.SUBMITTED]  # the one under way reached BFL
    assert in_flight(svc.slots, "default") == 1  # the other took no slot


def test_with_no_job_in_a_line_the_dispatcher_waits_for_one_to_join_not_for_the_second(services, sim):
    svc = services()
    senders = _start(svc, 2)
    try:
        time.sleep(0.3)  # its first look, at start
        # A second at a time, it would dispatch twice here; with every line empty it waits for a wake-up.
        idle = commands_during(svc.redis, 6, lambda: time.sleep(2.5))
        assert [c for c in idle if c["command"].startswith("EVALSHA")] == []
        woken = time.monotonic()
        job = _queue(svc, 1)[0]  # joining a line wakes a dispatcher
        wait_until(lambda: svc.jobs.get(job.id).status == st.SUBMITTED, timeout=5, message="the job sent")
        assert time.monotonic() - woken < sending.IDLE_WAKE_TIMEOUT - 1
    finally:
        senders.stop()


def test_with_every_slot_taken_the_dispatcher_waits_for_one_to_free_not_for_the_second(services, sim):
    # Key A's jobs hold every slot; key B's one job waits for one, and is sent as soon as A's first frees.
    svc = services()
    key_a, key_b = _two_keys(svc)
    first, senders = _hold_every_slot(svc, key_a, 2)
    try:
        waiting = _queue(svc, 1, key_b)[0]  # joining a full pool, it wakes no dispatcher
        svc.redis.lpush(svc.store.keys.slot_freed, 1)  # one wakes anyway (as a wake-up for a slot another process took would)
        wait_until(lambda: not svc.redis.exists(svc.store.keys.slot_freed), timeout=6, message="the dispatcher woken")
        # It finds B's job waiting and every slot taken. A look a second would be two or three dispatches here.
        busy = commands_during(svc.redis, 6, lambda: time.sleep(2.5))
        assert len([c for c in busy if c["command"].startswith("EVALSHA")]) <= 1
        freed = time.monotonic()
        assert svc.jobs.transition(first[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
        wait_until(lambda: svc.jobs.get(waiting.id).status == st.SUBMITTED, timeout=5, message="the job sent")
        assert time.monotonic() - freed < sending.IDLE_WAKE_TIMEOUT - 1  # woken by the slot, not by its bound
    finally:
        senders.stop()


def test_a_sender_sends_by_the_account_the_dispatch_gave_without_reading_it_back(services, sim):
    svc = services()
    job = _queue(svc, 1)[0]
    started: list[dispatcher.Dispatcher] = []

    def send() -> None:
        started.append(_start(svc, 1))
        wait_until(lambda: svc.jobs.get(job.id).status == st.SUBMITTED, timeout=5, message="the job sent")

    try:
        sent = [c for c in commands_during(svc.redis, 6, send)]
        assert any(c["command"].startswith("EVALSHA") for c in sent)
        assert any(c["command"].startswith("SET fh:submit:") for c in sent)
        # Its own reads: whether it still holds its slot, with its lock (a script's are none: the dispatch took it out
        # of its line), never which account's it is.
        assert [c["command"].split(" ")[0] for c in sent if c["client_type"] != "lua" and "slot_holders" in c["command"]
                and not c["command"].startswith("EVALSHA")] == ["HEXISTS"]
        assert svc.jobs.get(job.id).account == "default"
    finally:
        for senders in started:
            senders.stop()


def test_a_slot_past_its_lease_is_freed_though_every_wait_is_woken(services, sim):
    """Under load each wait of the dispatcher ends by a wake-up (a slot freed somewhere); a slot held past its lease
    (its job never ended) is still freed within LAPSED_LOOK_EVERY, not only once the load stops."""
    svc = services()
    holders = [Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro", pool="default", input={"prompt": "held"},
                   created_at=time.time(), updated_at=time.time()) for _ in range(4)]
    for job in holders:
        svc.jobs.create(job)
        assert svc.slots.acquire(job)  # every slot held, by jobs nobody sends
    waiting = _queue(svc, 1)[0]
    senders = _start(svc, 1)
    stop = threading.Event()

    def wake() -> None:
        while not stop.wait(0.2):
            svc.redis.lpush(svc.store.keys.slot_freed, 1)

    try:
        wait_until(lambda: senders.busy() == 0 and svc.redis.llen(svc.store.keys.slot_freed) == 0, timeout=5,
                   message="the dispatcher's first look")
        lapsed = time.time() - SLOT_LEASE - 1
        svc.redis.zadd(svc.store.keys.slots("default"), {job.id: lapsed for job in holders})
        threading.Thread(target=wake, daemon=True).start()
        wait_until(lambda: svc.jobs.get(waiting.id).status == st.SUBMITTED, timeout=sending.LAPSED_LOOK_EVERY + 5,
                   message="the waiting job sent in a lapsed slot")
    finally:
        stop.set()
        senders.stop()
