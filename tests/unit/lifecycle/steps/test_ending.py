"""Ending a job on purpose (fluxhook/lifecycle/steps/ending.py), in real Redis: each status as the rule says, under
the job's submit lock while it is unsent, and a job that moves meanwhile looked at again as it is now. The callers:
tests/unit/lifecycle/test_canceling.py and test_deadlines.py."""

from __future__ import annotations

import pytest

from ending_helpers import queued_job
from fluxhook.core import job as st
from fluxhook.core.job import CANCELED_SENT, cancel_ending, deadline_ending
from fluxhook.lifecycle.steps import ending
from fluxhook.store.keys import KEYS

DB = 12


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def test_each_outcome(svc):
    job = queued_job(svc, "ended once")
    assert ending.end(svc, job.id, deadline_ending, wait=0) == ending.Ended.ENDED
    assert svc.jobs.get(job.id).status == st.ABORTED
    assert ending.end(svc, job.id, cancel_ending, wait=0) == ending.Ended.ALREADY
    assert ending.end(svc, "job_00000000000000000000000000", cancel_ending, wait=0) == ending.Ended.GONE


def test_an_unsent_job_ends_only_under_its_submit_lock_and_frees_the_lock_after(svc):
    job = queued_job(svc, "being sent")
    lock = KEYS.submit_lock(job.id)
    assert svc.store.locks.acquire(lock, "a-sender", 60)
    assert ending.end(svc, job.id, cancel_ending, wait=0) == ending.Ended.SENDING
    assert svc.jobs.get(job.id).status == st.QUEUED and svc.store.locks.holder(lock) == "a-sender"
    svc.store.locks.release(lock)
    assert ending.end(svc, job.id, cancel_ending, wait=0) == ending.Ended.ENDED
    assert svc.store.locks.holder(lock) is None  # its own lock is given back


def test_a_job_sent_while_the_cancel_waited_ends_as_one_bfl_has(svc):
    job = queued_job(svc, "sent meanwhile")
    lock = KEYS.submit_lock(job.id)
    assert svc.store.locks.acquire(lock, "a-sender", 60)
    # The sender's send goes through and it lets go: the waiting cancel finds a submitted job.
    svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-1", cost_credits=3.0)
    svc.store.locks.release(lock)
    assert ending.end(svc, job.id, cancel_ending, wait=1) == ending.Ended.ENDED
    ended = svc.jobs.get(job.id)
    assert (ended.status, ended.cost_credits) == (st.CANCELED, 3.0)
    assert ended.error == {"code": "canceled", "message": CANCELED_SENT.message}
