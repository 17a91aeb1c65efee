"""Canceling a job (fluxhook/lifecycle/canceling.py) and ending one at its deadline (fluxhook/lifecycle/deadlines.py),
in real Redis against the simulator: a queued job ends unsent, its slot, place in line and reservation freed, and no
sender sends it after; a sent one ends at once with BFL's charge kept and its later result never downloaded. Over
HTTP with the worker: tests/e2e/jobs/test_cancel.py, tests/e2e/jobs/test_deadlines.py."""

from __future__ import annotations

import time

import pytest

from credit_helpers import submit_job
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import transitions as st
from fluxhook.core.errors import AlreadyEnded, JobNotFound, SendUnderWay
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.core.pools import pool_for
from fluxhook.lifecycle import canceling, deadlines
from fluxhook.lifecycle.steps import submission
from fluxhook.lifecycle.steps.applying import POLLED, apply_report
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS

DB = 12
KEY = AppKey(id="key_00000000000000aa", name="shop", prefix="fhk_0000", secret_sha256="x")
OTHER = AppKey(id="key_00000000000000bb", name="other", prefix="fhk_0001", secret_sha256="y")


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _in_line(svc, prompt: str, *, deadline: float | None = None, key: AppKey | None = None, take: bool = False) -> Job:
    """A queued job made as POST /v1/jobs makes it: recorded with its place in line (and a slot, with ``take``)."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
              input={"prompt": prompt}, created_at=now, updated_at=now, deadline=deadline,
              key_id=key.id if key else None)
    svc.slots.acquire(job, job.key_id, take=take, creation=svc.jobs.creation(job))
    return svc.jobs.get(job.id)


def test_a_queued_job_canceled_leaves_its_line_and_reservation_and_is_never_sent(svc, sim):
    job = _in_line(svc, "never sent")
    svc.redis.hset(KEYS.budget_held, job.id, f"{int(time.time() * 1000) + 60000} 5000000")
    assert svc.slots.waiting(job.pool) == 1

    canceled = canceling.cancel_job(svc, ADMIN, job.id)

    assert canceled.status == st.CANCELED and canceled.error["code"] == "canceled"
    assert canceled.completed_at is not None and canceled.cost() is None and canceled.input is None
    assert svc.slots.waiting(job.pool) == 0 and not svc.slots.holds(job)
    assert svc.redis.hget(KEYS.budget_held, job.id) is None
    # A sender that read the job before the cancel sends nothing: it looks again under the job's submit lock.
    assert submission.submit(svc, job) == "skipped"
    assert svc.jobs.get(job.id).bfl_id is None and sim.stats()["submitted"] == 0


def test_a_job_holding_a_slot_gives_it_back_when_canceled(svc, sim):
    job = _in_line(svc, "holds a slot", take=True)
    assert svc.slots.holds(job)
    canceling.cancel_job(svc, ADMIN, job.id)
    assert not svc.slots.holds(job) and svc.jobs.get(job.id).status == st.CANCELED


def test_a_cancel_waits_for_a_send_under_way_and_changes_nothing_if_it_does_not_end(svc):
    job = _in_line(svc, "being sent")
    lock = KEYS.submit_lock(job.id)
    assert svc.store.locks.acquire(lock, "a-sender", 60)
    started = time.monotonic()
    with pytest.raises(SendUnderWay) as busy:
        canceling.cancel_job(svc, ADMIN, job.id, wait=0.3)
    assert time.monotonic() - started >= 0.3 and busy.value.status == 503 and busy.value.retry_after
    assert svc.jobs.get(job.id).status == st.QUEUED and svc.slots.waiting(job.pool) == 1
    svc.store.locks.release(lock, "a-sender")
    assert canceling.cancel_job(svc, ADMIN, job.id, wait=0.3).status == st.CANCELED


def test_a_submitted_job_canceled_keeps_its_cost_and_its_later_result_is_never_downloaded(svc, sim):
    job = submit_job(svc, "[pending] canceled at BFL")
    assert job.status == st.SUBMITTED and job.cost_credits is not None

    canceled = canceling.cancel_job(svc, ADMIN, job.id)

    assert canceled.status == st.CANCELED and canceled.cost_credits == job.cost_credits
    assert canceled.bfl_id == job.bfl_id and "charge stays" in canceled.error["message"]
    sim.complete(job.bfl_id)
    late = BFLReport(job.bfl_id, st.BFL_READY, sample_url="https://delivery.example/late.png")
    assert apply_report(svc, job.id, late, POLLED) == ReportOutcome.DUPLICATE
    after = svc.jobs.get(job.id)
    assert (after.status, after.storage_key, after.downloads) == (st.CANCELED, None, 0)
    assert svc.store.locks.holder(KEYS.download_lock(job.id)) is None  # no download was queued


def test_an_ended_job_is_already_ended_and_stays_as_it_is(svc):
    job = _in_line(svc, "canceled twice")
    canceling.cancel_job(svc, ADMIN, job.id)
    before = svc.redis.hgetall(KEYS.job(job.id))
    with pytest.raises(AlreadyEnded) as ended:
        canceling.cancel_job(svc, ADMIN, job.id)
    assert ended.value.status == 409 and "canceled" in ended.value.message
    assert svc.redis.hgetall(KEYS.job(job.id)) == before


def test_another_keys_job_is_not_found_and_untouched(svc):
    for key in (KEY, OTHER):
        svc.store.app_keys.create(key)
    theirs = _in_line(svc, "another tenant's", key=OTHER)
    with pytest.raises(JobNotFound):
        canceling.cancel_job(svc, Caller(key=svc.store.app_keys.get(KEY.id)), theirs.id)
    with pytest.raises(JobNotFound):
        canceling.cancel_job(svc, ADMIN, "job_00000000000000000000000000")
    assert svc.jobs.get(theirs.id).status == st.QUEUED and svc.slots.waiting(theirs.pool) == 1
    assert canceling.cancel_job(svc, Caller(key=svc.store.app_keys.get(OTHER.id)), theirs.id).status == st.CANCELED


def test_the_sweep_aborts_an_unsent_job_and_cancels_a_sent_one_at_their_deadlines(svc, sim):
    sent = submit_job(svc, "[pending] sent before its deadline")
    now = time.time()
    unsent = _in_line(svc, "waits past its deadline", deadline=now - 1)
    later = _in_line(svc, "its deadline is later", deadline=now + 3600)
    svc.jobs.update(sent.id, deadline=now - 1)
    svc.redis.zadd(KEYS.deadlines, {sent.id: now - 1})

    assert sweep(svc, now).deadlines == 2

    aborted, canceled = svc.jobs.get(unsent.id), svc.jobs.get(sent.id)
    assert (aborted.status, aborted.error["code"], aborted.bfl_id) == (st.ABORTED, "deadline_exceeded", None)
    assert svc.slots.waiting(unsent.pool) == 1  # the later one's place only
    assert (canceled.status, canceled.error["code"]) == (st.CANCELED, "deadline_exceeded")
    assert canceled.cost_credits == sent.cost_credits
    assert svc.jobs.get(later.id).status == st.QUEUED
    # Only the later deadline is left to act on, and the sweep reads nothing more.
    assert [m.decode() for m in svc.redis.zrange(KEYS.deadlines, 0, -1)] == [later.id]
    assert sweep(svc, time.time()).deadlines == 0


def test_a_sender_never_sends_a_job_past_its_deadline(svc, sim):
    # Its deadline has passed, and the sweep has not looked yet.
    job = _in_line(svc, "too late to send", deadline=time.time() - 0.1, take=True)
    assert submission.submit(svc, job) == st.ABORTED
    aborted = svc.jobs.get(job.id)
    assert aborted.status == st.ABORTED and aborted.bfl_id is None and sim.stats()["submitted"] == 0
    assert not svc.slots.holds(job)


def test_a_deadline_passing_during_a_send_is_looked_at_again_once_bfl_answers(svc, sim):
    job = _in_line(svc, "[pending] sent as its deadline passes", deadline=time.time() - 1)
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
    job = _in_line(svc, "indexed", deadline=time.time() + 60)
    assert svc.redis.zscore(KEYS.deadlines, job.id) == pytest.approx(job.deadline, abs=0.001)
    assert svc.jobs.get(job.id).to_api()["deadline"] is not None
    svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), error={"code": "x", "message": "y"})
    assert svc.redis.zscore(KEYS.deadlines, job.id) is None
    deleted = _in_line(svc, "deleted", deadline=time.time() + 60)
    svc.jobs.delete(deleted.id)
    assert svc.redis.zcard(KEYS.deadlines) == 0
