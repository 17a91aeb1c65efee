"""A queued job's submission by a worker's sender (fluxhook/lifecycle/submitting.py, in real Redis): one cut off by
Redis failing over gives back only what it still holds. The send itself: tests/unit/lifecycle/steps/test_submission.py."""

from __future__ import annotations

import pytest

from fluxhook.lifecycle import submitting
from fluxhook.store.keys import KEYS
from slot_helpers import _queued

LIMIT = 100
UNIT_DB = 6


@pytest.fixture()
def svc(make_services):
    return make_services(UNIT_DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="2")


def test_a_submission_cut_off_by_a_failover_gives_back_only_what_it_still_holds(svc):
    """A sender cut off by Redis failing over puts its job back in line once Redis answers; but when the new
    primary had lost its turn and another sender holds the job's lock by now, it leaves the job, its slot and
    its lock to that sender: taking them back would let a third send the job to BFL a second time."""
    job = _queued(svc.jobs, prompt="cut off")
    lock = KEYS.submit_lock(job.id)
    assert svc.slots.acquire(job)
    assert svc.store.locks.acquire(lock, "another-sender", 60)
    assert submitting._back_in_line(svc, job.id, "cut-off-sender")
    assert svc.slots.holds(job) and svc.store.locks.holder(lock) == "another-sender"

    svc.store.locks.release(lock)
    assert svc.store.locks.acquire(lock, "cut-off-sender", 60)  # its release was lost with the old primary
    assert submitting._back_in_line(svc, job.id, "cut-off-sender")
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert svc.store.locks.holder(lock) is None
