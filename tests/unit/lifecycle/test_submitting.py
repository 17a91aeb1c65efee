"""A queued job's submission by a worker's sender (fluxhook/lifecycle/submitting.py, in real Redis): one cut off by
Redis failing over gives back only what it still holds. The send itself: tests/unit/lifecycle/steps/test_submission.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.pools import pool_for
from fluxhook.lifecycle import submitting
from fluxhook.store.keys import KEYS

LIMIT = 100
PRICED = "flux-2-pro"  # 3 credits a task here
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


def test_a_submission_cut_off_by_a_failover_gives_back_only_what_it_still_holds(svc):
    """A sender cut off by Redis failing over puts its job back in line once Redis answers; but when the new
    primary had lost its turn and another sender holds the job's lock by now, it leaves the job, its slot and
    its lock to that sender: taking them back would let a third send the job to BFL a second time."""
    job = _queued(svc, "cut off")
    lock = KEYS.submit_lock(job.id)
    assert svc.slots.acquire(job)
    assert svc.store.locks.acquire(lock, "another-sender", 60)
    assert submitting._back_in_line(svc, job, "cut-off-sender")
    assert svc.slots.holds(job) and svc.store.locks.holder(lock) == "another-sender"

    svc.store.locks.release(lock)
    assert svc.store.locks.acquire(lock, "cut-off-sender", 60)  # its release was lost with the old primary
    assert submitting._back_in_line(svc, job, "cut-off-sender")
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert svc.store.locks.holder(lock) is None
