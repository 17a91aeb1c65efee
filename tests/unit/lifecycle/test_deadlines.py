"""Deadlines (fluxhook/lifecycle/deadlines.py) in real Redis against the simulator: the sweep aborts a job not sent by
its deadline and cancels one sent but not stored (which keeps its slot while BFL runs its task on), reading only the
deadlines due; a sender never sends a job past its
deadline; a deadline passing during a send waits for BFL's answer. Over HTTP with the worker:
tests/e2e/jobs/test_deadlines.py."""

from __future__ import annotations

import time

import pytest

from credit_helpers import submit_job
from ending_helpers import queued_job
from fluxhook.core import job as st
from fluxhook.lifecycle import deadlines
from fluxhook.lifecycle.steps import submission
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.keys import KEYS

DB = 12


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def test_the_sweep_aborts_an_unsent_job_and_cancels_a_sent_one_at_their_deadlines(svc, sim):
    sent = submit_job(svc, "[pending] sent before its deadline")
    now = time.time()
    unsent = queued_job(svc, "waits past its deadline", deadline=now - 1)
    later = queued_job(svc, "its deadline is later", deadline=now + 3600)
    svc.jobs.update(sent.id, deadline=now - 1)
    svc.redis.zadd(KEYS.deadlines, {sent.id: now - 1})

    assert sweep(svc, now).deadlines == 2

    aborted, canceled = svc.jobs.get(unsent.id), svc.jobs.get(sent.id)
    assert (aborted.status, aborted.error["code"], aborted.bfl_id) == (st.ABORTED, "deadline_exceeded", None)
    assert svc.slots.waiting(unsent.pool) == 1  # the later one's place only
    assert (canceled.status, canceled.error["code"]) == (st.CANCELED, "deadline_exceeded")
    assert canceled.cost_credits == sent.cost_credits
    # BFL runs its task on (it has no cancel): the job keeps its slot and stays due for the sweep's polls of it.
    assert svc.slots.holds(canceled) and svc.jobs.due_at(sent.id) is not None
    assert svc.jobs.get(later.id).status == st.QUEUED
    # Only the later deadline is left to act on, and the sweep reads nothing more.
    assert [m.decode() for m in svc.redis.zrange(KEYS.deadlines, 0, -1)] == [later.id]
    assert sweep(svc, time.time()).deadlines == 0


def test_a_sender_never_sends_a_job_past_its_deadline(svc, sim):
    # Its deadline has passed, and the sweep has not looked yet.
    job = queued_job(svc, "too late to send", deadline=time.time() - 0.1, send_here=True)
    assert submission.submit(svc, job.id) == st.ABORTED
    aborted = svc.jobs.get(job.id)
    assert aborted.status == st.ABORTED and aborted.bfl_id is None and sim.stats()["submitted"] == 0
    assert not svc.slots.holds(job)


def test_a_deadline_passing_during_a_send_is_looked_at_again_once_bfl_answers(svc, sim):
    job = queued_job(svc, "[pending] sent as its deadline passes", deadline=time.time() - 1)
    lock = KEYS.submit_lock(job.id)
    assert svc.store.locks.acquire(lock, "a-sender", 60)
    now = time.time()
    assert deadlines.enforce_deadlines(svc, now) == 0
    assert svc.jobs.get(job.id).status == st.QUEUED
    assert svc.redis.zscore(KEYS.deadlines, job.id) == pytest.approx(now + deadlines.SENDING_RECHECK, abs=0.01)
    # The send went through: at the next look it is a job BFL has, canceled with its charge.
    svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-1", bfl_status=st.BFL_PENDING)
    svc.store.locks.release(lock, "a-sender")
    assert deadlines.enforce_deadlines(svc, now + 2) == 1
    assert svc.jobs.get(job.id).status == st.CANCELED


def test_a_job_made_with_a_deadline_is_indexed_once_and_leaves_the_index_when_it_ends(svc):
    job = queued_job(svc, "indexed", deadline=time.time() + 60)
    assert svc.redis.zscore(KEYS.deadlines, job.id) == pytest.approx(job.deadline, abs=0.001)
    assert svc.jobs.get(job.id).to_api()["deadline"] is not None
    svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), error={"code": "x", "message": "y"})
    assert svc.redis.zscore(KEYS.deadlines, job.id) is None
    deleted = queued_job(svc, "deleted", deadline=time.time() + 60)
    svc.jobs.delete(deleted.id)
    assert svc.redis.zcard(KEYS.deadlines) == 0
