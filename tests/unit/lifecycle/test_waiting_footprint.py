"""What waiting costs Redis (the sweep's checks, fluxhook/store/check_line.py; checking.py; waits.py), measured on the
suite's real Redis: hundreds of jobs waiting out of line for the daily budget (to go alone, or for the next day) come
due again and again, each time claimed by the real sweep and checked by a worker's checkers (worker/checkers.py), as
in `python -m worker`. After the first round of checks, later rounds add no key, no timeline entry and no memory to
speak of, so however long the jobs wait they cost O(1) records each, not one per recheck. A check keeps no record of
its run, and one that fails is logged with its job, which is due again.
The rules each check applies: tests/unit/lifecycle/steps/test_submission.py and test_waits.py."""

from __future__ import annotations

import logging
import time

import pytest

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.wait_reasons import WaitReason
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import submitting
from fluxhook.lifecycle.steps import waits
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.keys import KEYS
from helpers import tracked_job
from worker import checkers, dispatcher, inprocess, run

DB = 12
LIMIT = 100
PRICED = "flux-2-pro"
UNPRICED = "flux-unpriced-a"  # the catalog cannot bound it (tests/models.toml): its request goes alone
JOBS = 200
# Each round is one recheck of every job.
ROUNDS = 4
# What the jobs wait for, and how long until each looks again: to go alone, after the one sent alone before them;
# the next UTC day, the day's credits being spent (asleep until then: each round's look is a raised limit's wake).
WAITS = {WaitReason.BUDGET_SETTLING: budget.ALONE_RECHECK, WaitReason.DAILY_CREDITS: 0.0}
# RQ's records of a task: the task, its results, its executions.
RQ_TASK_KEYS = ("rq:job:*", "rq:results:*", "rq:execution*")
# A worker's checkers, as WORKER_CHECK_CONCURRENCY's default.
CHECKERS = 2


@pytest.fixture()
def services(make_services, monkeypatch):
    """Services on a database of their own, installed for the RQ tasks of this process as `python -m worker` does."""
    def build(**overrides):
        svc = make_services(DB, **overrides)
        monkeypatch.setattr(inprocess, "_services", svc)
        return svc
    return build


def _waiting(svc, count: int, reason: WaitReason) -> list[Job]:
    """``count`` queued jobs the budget sent out of line, each waiting for ``reason``."""
    if reason == WaitReason.BUDGET_SETTLING:
        assert budget.reserve(svc, "job_alone", UNPRICED, {"prompt": "alone"}).admitted
    else:
        svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, accounting.to_micro(LIMIT))
    jobs = []
    for n in range(count):
        now = time.time()
        job = Job(id=new_job_id(now), status=st.QUEUED, model=PRICED, input={"prompt": f"waits {n}"},
                  pool=pool_for(PRICED), created_at=now, updated_at=now)
        svc.jobs.create(job)
        assert svc.slots.acquire(job) and submitting.submit_queued(svc, job.id) == st.QUEUED
        jobs.append(job)
    return jobs


def _round(svc, count: int, after: float) -> None:
    """``after`` seconds on, the sweep claims the ``count`` jobs come due and puts them in the check line, and a
    worker's checkers run them all. Each job comes due again only if its check ran and set its next look: a claim
    lasts longer."""
    if not after:
        waits.wake_held(svc, every=True)
    assert sweep(svc, now=time.time() + after + 1).due == count
    pool = dispatcher.Dispatcher(run.wakes_for(svc.config), [checkers.Checks(svc, CHECKERS)]).started()
    try:
        wait_until(lambda: svc.store.checks.waiting() == 0 and pool.busy() == 0, timeout=60,
                   message="the checkers to run every check")
    finally:
        pool.stop()


def _footprint(svc) -> tuple[int, int]:
    """Keys in the test's database, and the memory they take (MEMORY USAGE of each, summed: the suite's other
    processes share the server, so its own figure would count their work too). Not the check line's wake-up: a token
    that is there or not as the checkers' dispatcher happened to pop it."""
    keys = [key for key in svc.redis.scan_iter(count=1000) if key.decode() != KEYS.check_added]
    pipe = svc.redis.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return len(keys), sum(size or 0 for size in pipe.execute())


def _timeline_lengths(svc, jobs: list[Job]) -> list[int]:
    pipe = svc.redis.pipeline(transaction=False)
    for job in jobs:
        pipe.llen(KEYS.timeline(job.id))
    return pipe.execute()


def _rq_task_keys(svc) -> list[bytes]:
    return [key for pattern in RQ_TASK_KEYS for key in svc.redis.scan_iter(pattern)]


@pytest.mark.parametrize("reason", list(WAITS), ids=str)
def test_jobs_waiting_on_the_budget_cost_redis_nothing_more_per_recheck(services, reason):
    svc = services(BFL_DAILY_CREDIT_LIMIT=str(LIMIT))
    _, empty = _footprint(svc)
    jobs = _waiting(svc, JOBS, reason)
    _, waiting = _footprint(svc)
    own = waiting - empty

    _round(svc, JOBS, WAITS[reason])
    keys_once, _ = _footprint(svc)
    timelines_once = _timeline_lengths(svc, jobs)
    for _ in range(ROUNDS - 1):
        _round(svc, JOBS, WAITS[reason])
    keys_after, memory_after = _footprint(svc)

    # Every check ran and left its job waiting, out of line, for the same reason.
    assert {svc.jobs.get(job.id).waiting_reason for job in jobs} == {str(reason)}
    assert svc.slots.waiting(pool_for(PRICED)) == 0
    # ROUNDS rechecks of each job cost what one did: no key, no timeline entry; and all of them together less
    # memory than the waiting jobs' own records.
    assert keys_after == keys_once, f"{keys_after - keys_once} keys more after {ROUNDS - 1} more rounds of rechecks"
    assert _timeline_lengths(svc, jobs) == timelines_once
    assert memory_after - waiting < own, (
        f"{ROUNDS} rounds of rechecks took {memory_after - waiting} B; the {JOBS} jobs' own records take {own} B")
    assert not _rq_task_keys(svc)


def test_a_check_keeps_no_record_and_a_failed_one_is_logged_and_due_again(services, spy, caplog):
    svc = services(BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")
    spy.route("/v1/get_result?id=pending-task", 200, b'{"id": "pending-task", "status": "Pending"}')
    spy.route("/v1/get_result?id=garbled-task", 200, b"[]")  # an answer no poll can read
    pending = tracked_job(svc, "pending-task", due=time.time() - 1)
    garbled = tracked_job(svc, "garbled-task", due=time.time() - 1)

    before = time.time()
    with caplog.at_level(logging.WARNING, logger="fluxhook.worker"):
        _round(svc, 2, after=-1)

    assert svc.jobs.get(pending.id).polls == 1 and svc.jobs.get(garbled.id).polls == 1
    assert not _rq_task_keys(svc) and not svc.redis.exists(KEYS.check_claims)
    [failed] = [r for r in caplog.records if r.getMessage() == "check failed"]
    assert (failed.job_id, failed.error) == (garbled.id, "BFLUnavailable")
    # The due index looks at it again, as at every failed poll.
    assert svc.jobs.get(garbled.id).status == st.SUBMITTED and svc.jobs.due_at(garbled.id) > before
