"""A queued job and the daily budget's reservation "sent alone" (fluxhook/lifecycle/submitting.py, step by step in real
Redis): a job waiting for the one sent alone stays out of line until it settles, and a slot handed back for the
budget goes on at once, not at the next sweep. Through the Procfile's processes: tests/e2e/credits/test_budget_liveness.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.core.pools import pool_for
from fluxhook.credits import budget
from fluxhook.lifecycle import checking, submitting
from fluxhook.store.keys import KEYS

LIMIT = 100
PRICED = "flux-2-pro"  # 3 credits a task here
# Models the catalog cannot bound (tests/models.toml): their requests go alone.
UNPRICED, UNPRICED_B = "flux-unpriced-a", "flux-unpriced-b"
UNIT_DB = 6


@pytest.fixture()
def svc(make_services):
    return make_services(UNIT_DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="2")


def _queued(svc, prompt: str, model: str = PRICED) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=model, input={"prompt": prompt}, pool=pool_for(model),
              created_at=now, updated_at=now)
    svc.jobs.create(job)
    return job


def _come_due(svc, job: Job) -> CheckOutcome:
    """The sweep's check of the job waiting out of line, as if its wait were over."""
    claim = time.time() + 60
    assert svc.jobs.claim_due(time.time() + budget.ALONE_RECHECK + 1, 10, claim) == [job.id]
    return checking.check_job(svc, job.id, claim)


def test_a_job_waiting_for_the_one_sent_alone_stays_out_of_line_until_it_settles(svc, sim):
    waiting = _queued(svc, "waits")
    alone = _queued(svc, "alone", model=UNPRICED)
    assert budget.reserve(svc, alone.id, alone.model, alone.input).admitted  # unpriced: alone
    assert svc.slots.acquire(waiting) and submitting.submit_queued(svc, waiting.id) == st.QUEUED
    assert not svc.slots.holds(waiting) and svc.slots.waiting(waiting.pool) == 0
    # Its wait is over, the reservation sent alone is not: it stays out of line, and takes no slot from it.
    assert _come_due(svc, waiting) == CheckOutcome.RESCHEDULED
    assert svc.slots.waiting(waiting.pool) == 0 and svc.jobs.due_at(waiting.id) > time.time()
    assert svc.slots.acquire(alone)
    svc.store.usage.release(alone.id)  # settled: BFL stated its price
    assert _come_due(svc, waiting) == CheckOutcome.REQUEUED
    assert svc.slots.waiting(waiting.pool) == 1


def test_a_slot_handed_back_for_the_budget_goes_on_at_once_not_at_the_next_sweep(svc, sim):
    waiting = _queued(svc, "waits")
    assert budget.reserve(svc, "job_alone", UNPRICED, {"prompt": "alone"}).admitted
    assert svc.slots.acquire(waiting)
    svc.redis.delete(KEYS.slot_freed)
    assert submitting.submit_queued(svc, waiting.id) == st.QUEUED
    assert svc.redis.llen(KEYS.slot_freed) == 1  # a worker's hand-out wakes for it


def test_a_submission_cut_off_by_a_failover_gives_back_only_what_it_still_holds(svc):
    """A sender cut off by Redis failing over puts its job back in line once Redis answers; but when the new
    primary had lost its turn and another sender holds the job's lock by now, it leaves the job, its slot and
    its lock to that sender: taking them back would let a third send the job to BFL a second time."""
    job = _queued(svc, "cut off")
    lock = KEYS.submit_lock(job.id)
    assert svc.slots.acquire(job)
    assert svc.store.locks.take(lock, "another-sender", 60)
    assert submitting._back_in_line(svc, job, "cut-off-sender")
    assert svc.slots.holds(job) and svc.store.locks.holder(lock) == "another-sender"

    svc.store.locks.release(lock)
    assert svc.store.locks.take(lock, "cut-off-sender", 60)  # its release was lost with the old primary
    assert submitting._back_in_line(svc, job, "cut-off-sender")
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert svc.store.locks.holder(lock) is None
