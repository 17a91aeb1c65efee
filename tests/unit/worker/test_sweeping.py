"""The worker's sweep thread (worker/sweeping.py): it runs the fallback sweep once a second by itself, no RQ task
in between, and puts due jobs in the check line, while its indexes hold anything; at rest it waits on the sweepers'
wake-up list, which a job that becomes the first due or with a deadline pushes whichever process made it, one command
a look; it stops at once when told to, resting or not. What a sweep does: tests/unit/lifecycle/test_sweep.py."""

from __future__ import annotations

import time

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from helpers import commands_during, tracked_job
from worker import run, sweeping


def test_the_sweep_thread_puts_each_job_that_comes_due_in_the_check_line_and_stops_at_once(make_services):
    svc = make_services(6)
    sweeper = sweeping.Sweeper(svc, run.wakes_for(svc.config)).started()
    try:
        first = tracked_job(svc, "task-due-first", due=time.time() - 1)  # the first due: the sweeper at rest wakes
        wait_until(lambda: svc.store.checks.waiting() == 1, timeout=5, message="the sweep to claim the due job")
        later = tracked_job(svc, "task-due-later", due=time.time() + 1)  # a sweep or two on: the next ones see it
        wait_until(lambda: svc.store.checks.waiting() == 2, timeout=5, message="a later sweep to claim the next job")
    finally:
        started = time.monotonic()
        sweeper.stop()
        assert not sweeper.is_alive() and time.monotonic() - started < 1.0
    # In the order of their owner's turns (one owner: its jobs' creation).
    assert [check.job_id for check in svc.store.checks.take(10)] == [first.id, later.id]


def test_at_rest_the_sweep_thread_costs_one_round_trip_a_look_and_any_process_s_first_due_job_wakes_it(make_services):
    svc = make_services(6)
    wakes = run.wakes_for(svc.config)
    sweeper = sweeping.Sweeper(svc, wakes).started()
    try:
        sent = commands_during(svc.redis, 6, lambda: time.sleep(1.5))
        # It looked at its start, and waits (its wait may begin within the window): nothing more.
        waits = [c["command"] for c in sent if not c["command"].startswith("SELECT")]
        assert len(waits) <= 1 and all(c.startswith("BLPOP fh:sweep:added ") for c in waits), waits
        # Made as a web process makes it (its own store, no word to this process): the script's push wakes it.
        started = time.monotonic()
        tracked_job(svc, "task-due", due=time.time() - 1)
        wait_until(lambda: svc.store.checks.waiting() == 1, timeout=2, message="the woken sweep to claim the due job")
        assert time.monotonic() - started < 1.0  # woken, not found by the guard's look
    finally:
        sweeper.request_stop()
        started = time.monotonic()
        wakes.stop(1)  # as its process's stop does (worker.run): the wait ends at once
        wait_until(lambda: not sweeper.is_alive(), timeout=1, message="the resting sweeper to end at its stop")


def test_a_sweeper_whose_first_due_time_is_far_off_rests_until_then_and_an_earlier_job_wakes_it(make_services):
    svc = make_services(6)
    held = tracked_job(svc, "task-held-for-the-day", due=time.time() + 3600)  # as a job held for a day's credits
    svc.redis.delete(KEYS.sweep_added)  # its wake-up, taken by an earlier sweeper
    wakes = run.wakes_for(svc.config)
    sweeper = sweeping.Sweeper(svc, wakes).started()
    try:
        sent = commands_during(svc.redis, 6, lambda: time.sleep(2.5))
        # At most its first look (one ZRANGE an index), then one wait: no sweep a second while the held job sleeps.
        commands = [c["command"].split(" ", 1)[0] for c in sent if not c["command"].startswith("SELECT")]
        assert set(commands) <= {"ZRANGE", "BLPOP"} and commands.count("BLPOP") <= 1, commands
        started = time.monotonic()
        first = tracked_job(svc, "task-due-now", due=time.time() - 1)  # before what it saw: its push wakes it
        wait_until(lambda: svc.store.checks.waiting() == 1, timeout=2, message="the woken sweep to claim the due job")
        assert time.monotonic() - started < 1.0  # woken, not found by the guard's look
        assert [check.job_id for check in svc.store.checks.take(10)] == [first.id]  # the held one still sleeps
        assert svc.jobs.due_at(held.id) > time.time() + 3000
    finally:
        sweeper.request_stop()
        wakes.stop(1)
        wait_until(lambda: not sweeper.is_alive(), timeout=1, message="the resting sweeper to end at its stop")


def test_a_resting_sweeper_wakes_by_itself_when_its_first_due_time_comes(make_services, monkeypatch):
    svc = make_services(6)
    monkeypatch.setattr(sweeping, "REST_BEYOND", 0.5)  # rests for a job due in 2 s, as it would for one due tomorrow
    due = time.time() + 2
    job = tracked_job(svc, "task-due-soon", due=due)
    sweeper = sweeping.Sweeper(svc, run.wakes_for(svc.config)).started()
    try:
        wait_until(lambda: svc.store.checks.waiting() == 1, timeout=5, message="the sweeper to claim the job at its time")
        assert due <= time.time() < due + 1.0
        assert [check.job_id for check in svc.store.checks.take(10)] == [job.id]
    finally:
        sweeper.stop()
