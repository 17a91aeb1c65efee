"""Canceling a job (fluxhook/lifecycle/canceling.py) in real Redis against the simulator: a queued job ends unsent,
its slot, place in line and reservation freed, and no sender sends it after; a sent one ends at once with BFL's charge
kept and its later result never downloaded. Deadlines: test_deadlines.py. Over HTTP with the worker:
tests/e2e/jobs/test_cancel.py."""

from __future__ import annotations

import time

import pytest

from credit_helpers import submit_job
from ending_helpers import queued_job
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import transitions as st
from fluxhook.core.errors import AlreadyEnded, JobNotFound, SendUnderWay
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle import canceling
from fluxhook.lifecycle.steps import submission
from fluxhook.lifecycle.steps.applying import POLLED, apply_report
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS

DB = 12
KEY = AppKey(id="key_00000000000000aa", name="shop", prefix="fhk_0000", secret_sha256="x")
OTHER = AppKey(id="key_00000000000000bb", name="other", prefix="fhk_0001", secret_sha256="y")


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def test_a_queued_job_canceled_leaves_its_line_and_reservation_and_is_never_sent(svc, sim):
    job = queued_job(svc, "never sent")
    svc.redis.hset(KEYS.budget_held, job.id, f"{int(time.time() * 1000) + 60000} 5000000")
    assert svc.slots.waiting(job.pool) == 1

    canceled = canceling.cancel_job(svc, ADMIN, job.id)

    assert canceled.status == st.CANCELED and canceled.error["code"] == "canceled"
    assert canceled.completed_at is not None and canceled.cost() is None and canceled.input is None
    assert svc.slots.waiting(job.pool) == 0 and not svc.slots.holds(job)
    assert svc.redis.hget(KEYS.budget_held, job.id) is None
    # A sender that read the job before the cancel sends nothing: it looks again under the job's submit lock.
    assert submission.submit(svc, job.id) == "skipped"
    assert svc.jobs.get(job.id).bfl_id is None and sim.stats()["submitted"] == 0


def test_a_job_holding_a_slot_gives_it_back_when_canceled(svc, sim):
    job = queued_job(svc, "holds a slot", send_here=True)
    assert svc.slots.holds(job)
    canceling.cancel_job(svc, ADMIN, job.id)
    assert not svc.slots.holds(job) and svc.jobs.get(job.id).status == st.CANCELED


def test_a_cancel_waits_for_a_send_under_way_and_changes_nothing_if_it_does_not_end(svc):
    job = queued_job(svc, "being sent")
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
    job = queued_job(svc, "canceled twice")
    canceling.cancel_job(svc, ADMIN, job.id)
    before = svc.redis.hgetall(KEYS.job(job.id))
    with pytest.raises(AlreadyEnded) as ended:
        canceling.cancel_job(svc, ADMIN, job.id)
    assert ended.value.status == 409 and "canceled" in ended.value.message
    assert svc.redis.hgetall(KEYS.job(job.id)) == before


def test_another_keys_job_is_not_found_and_untouched(svc):
    for key in (KEY, OTHER):
        svc.store.app_keys.create(key)
    theirs = queued_job(svc, "another tenant's", key_id=OTHER.id)
    with pytest.raises(JobNotFound):
        canceling.cancel_job(svc, Caller(key=svc.store.app_keys.get(KEY.id)), theirs.id)
    with pytest.raises(JobNotFound):
        canceling.cancel_job(svc, ADMIN, "job_00000000000000000000000000")
    assert svc.jobs.get(theirs.id).status == st.QUEUED and svc.slots.waiting(theirs.pool) == 1
    assert canceling.cancel_job(svc, Caller(key=svc.store.app_keys.get(OTHER.id)), theirs.id).status == st.CANCELED
