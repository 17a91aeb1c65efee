"""The worker's checkers (worker/checkers.py): the sweep's checks run in fluxhook's own threads, not RQ's, taken from
the check line in turn across keys; at rest the dispatcher waits on the line's wake-up, one command, and a check the
sweep adds after a rest starts at once; a stop ends the wait at once. Against a spy BFL answering polls Pending."""

from __future__ import annotations

import time

import pytest

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.sweep import sweep
from helpers import commands_during
from worker import checkers, dispatcher, run

DB = 6


@pytest.fixture()
def svc(make_services, spy):
    return make_services(DB, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _due(svc, spy, key_id: str | None, count: int = 1) -> list[Job]:
    """``count`` submitted jobs of app key ``key_id``, due now; BFL answers their polls Pending."""
    jobs = []
    for _ in range(count):
        now = time.time()
        task = f"task-{new_job_id()}"
        spy.route(f"/v1/get_result?id={task}", 200, f'{{"id": "{task}", "status": "Pending"}}'.encode())
        job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=task, key_id=key_id,
                                     created_at=now, updated_at=now, submitted_at=now,
                                     account=svc.config.accounts[0].name), due=now - 1)
        jobs.append(job)
    return jobs


def _polled(spy, job: Job) -> int | None:
    """The place of ``job``'s first poll among the spy's requests (None: not polled)."""
    path = f"/v1/get_result?id={job.bfl_id}"
    return spy.hits.index(path) if path in spy.hits else None


def test_another_keys_check_runs_within_one_turn_of_a_keys_backlog_of_overdue_polls(svc, spy):
    backlog = _due(svc, spy, "key_a", 30)
    assert sweep(svc).due == 30
    [other] = _due(svc, spy, "key_b")
    assert sweep(svc).due == 1
    # One checker: the order is the line's.
    pool = dispatcher.Dispatcher(run.wakes_for(svc.config), [checkers.Checks(svc, 1)]).started()
    try:
        wait_until(lambda: all(_polled(spy, job) is not None for job in [*backlog, other]), timeout=30,
                   message="every check to run")
    finally:
        pool.stop()
    # Key B waited for one of A's checks, not A's 30 (RQ's first in, first out made it the 31st).
    assert _polled(spy, other) <= 1
    assert sorted(_polled(spy, job) for job in backlog) == [n for n in range(31) if n != _polled(spy, other)]
    assert all(svc.jobs.get(job.id).polls == 1 for job in [*backlog, other])


def test_at_rest_the_dispatcher_waits_in_one_command_a_check_after_a_rest_starts_at_once_and_a_stop_ends_it(svc, spy):
    wakes = run.wakes_for(svc.config)
    pool = dispatcher.Dispatcher(wakes, [checkers.Checks(svc, 2)]).started()
    try:
        sent = commands_during(svc.redis, DB, lambda: time.sleep(1.5))
        waits = [c["command"] for c in sent if not c["command"].startswith("SELECT")]
        assert len(waits) <= 2 and all(c.startswith(("EVALSHA", "BLPOP fh:check:added ")) for c in waits), waits
        [job] = _due(svc, spy, "key_a")
        started = time.monotonic()
        assert sweep(svc).due == 1
        wait_until(lambda: svc.jobs.get(job.id).polls == 1, timeout=5, message="the woken checker to poll the job")
        assert time.monotonic() - started < 0.5
    finally:
        pool.request_stop()
        pool.stop_taking()
        started = time.monotonic()
        wakes.stop(1)  # as its process's stop does (worker.run): the wait ends at once
        wait_until(lambda: not pool.is_alive(), timeout=2, message="the resting dispatcher to end at its stop")
        assert time.monotonic() - started < 1.5
