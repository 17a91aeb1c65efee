"""Canceling a job (fluxhook/lifecycle/canceling.py) in real Redis against the simulator: a queued job ends unsent,
its slot, place in line and reservation freed, and no sender sends it after; a sent one ends at once with BFL's charge
kept and its later result never downloaded, and keeps its slot (its key's max_active, the account's count) until BFL
says its task ended, by callback or the sweep's poll, or its hour is over (steps/running_on.py). Deadlines:
test_deadlines.py. Over HTTP with the worker: tests/e2e/jobs/test_cancel.py, tests/e2e/jobs/test_cancel_churn.py."""

from __future__ import annotations

import time

import pytest

from credit_helpers import submit_job
from ending_helpers import queued_job
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.errors import AlreadyEnded, JobNotFound, SendUnderWay
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome, ReportOutcome
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.lifecycle import canceling, checking, key_admin
from fluxhook.lifecycle.accounts_view import accounts_now
from fluxhook.lifecycle.steps import submission, waits
from fluxhook.lifecycle.steps.applying import POLLED, apply_report, from_callback
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.schedule import POLL_DEADLINE
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
    # The first word that the task ended frees the slot it kept; the job changes no more, and downloads nothing.
    assert apply_report(svc, job.id, late, POLLED) == ReportOutcome.SLOT_FREED
    assert apply_report(svc, job.id, late, POLLED) == ReportOutcome.DUPLICATE
    after = svc.jobs.get(job.id)
    assert (after.status, after.storage_key, after.downloads) == (st.CANCELED, None, 0)
    assert (after.error, after.completed_at) == (canceled.error, canceled.completed_at)
    assert svc.store.locks.holder(KEYS.download_lock(job.id)) is None  # no download was queued


# --- canceling frees nothing BFL still uses -----------------------------------------------------------

def _sent(svc, prompt: str, key_id: str | None = None) -> Job:
    """A job BFL has, sent from its slot as a worker's sender sends it."""
    job = queued_job(svc, prompt, key_id=key_id, send_here=True)
    assert submission.submit(svc, job.id) == st.SUBMITTED
    return svc.jobs.get(job.id)


def _check(svc, job: Job) -> CheckOutcome:
    """The sweep's check of the job, as if it had come due now."""
    claim = time.time() + 120
    svc.redis.zadd(KEYS.due, {job.id: 0})
    assert job.id in svc.jobs.claim_due(time.time(), 100, claim)
    return checking.check_job(svc, job.id, claim)


def _key_seen(svc, key: AppKey) -> tuple[int, int]:
    """The key's ``active`` and ``canceled_running``, as ``GET /v1/keys/{id}`` answers them."""
    shown = key_admin.described(svc, [svc.store.app_keys.get(key.id)], time.time())[0]
    return shown["active"], shown["canceled_running"]


def test_a_canceled_job_keeps_its_slot_under_its_keys_max_active_until_bfls_callback_says_its_task_ended(svc, sim):
    key, _ = key_admin.create_key(svc, {"name": "churn", "max_active": 1}, time.time())
    first = _sent(svc, "[pending] canceled while BFL runs it", key_id=key.id)

    canceled = canceling.cancel_job(svc, Caller(key=key), first.id)

    # Canceled at once for its caller; its task runs on at BFL and keeps the slot, the key's one.
    assert canceled.status == st.CANCELED and svc.slots.holds(first)
    assert svc.jobs.due_at(first.id) is not None and canceled.polling_url == first.polling_url
    second = queued_job(svc, "the key's next job", key_id=key.id)
    assert not svc.slots.holds(second) and waits.of(svc, second) == Waiting(WaitReason.KEY_MAX_ACTIVE)
    assert svc.slots.dispatch().jobs == []
    assert _key_seen(svc, key) == (1, 1)
    account = accounts_now(svc, time.time())[0]
    assert (account["in_flight"], account["canceled_running"]) == ({"flux-2-pro": 1}, 1)

    sim.complete(first.bfl_id)
    report = BFLReport(first.bfl_id, st.BFL_READY, sample_url="https://delivery.example/done.png")
    assert apply_report(svc, first.id, report, from_callback(), expect_task=first.bfl_id) == ReportOutcome.SLOT_FREED

    assert not svc.slots.holds(first) and svc.jobs.due_at(first.id) is None
    after = svc.jobs.get(first.id)
    assert (after.status, after.polling_url, after.downloads) == (st.CANCELED, None, 0)
    assert svc.slots.dispatch().jobs == [second.id]  # the key's slot goes to its next job
    assert _key_seen(svc, key) == (1, 0)
    assert accounts_now(svc, time.time())[0]["canceled_running"] == 0


def test_the_sweeps_polls_go_on_after_the_cancel_and_free_the_slot_once_bfl_says_the_task_ended(svc, sim):
    job = _sent(svc, "[pending] polled after its cancel")
    canceling.cancel_job(svc, ADMIN, job.id)

    assert _check(svc, job) == CheckOutcome.RESCHEDULED  # still Pending at BFL: held, polled again later
    assert svc.slots.holds(job) and svc.jobs.due_at(job.id) > time.time()
    sim.complete(job.bfl_id, "error")
    assert _check(svc, job) == CheckOutcome.SLOT_FREED

    after = svc.jobs.get(job.id)
    assert not svc.slots.holds(job) and svc.jobs.due_at(job.id) is None
    assert (after.status, after.error["code"], after.polls) == (st.CANCELED, "canceled", 2)
    assert sim.task(job.bfl_id)["polls"] == 2


def test_a_canceled_tasks_hour_frees_its_slot_without_asking_bfl(svc, sim):
    job = _sent(svc, "[pending] runs past its hour")
    canceling.cancel_job(svc, ADMIN, job.id)
    svc.redis.hset(KEYS.job(job.id), "submitted_at", time.time() - POLL_DEADLINE)

    assert _check(svc, job) == CheckOutcome.SLOT_FREED

    assert not svc.slots.holds(job) and svc.jobs.due_at(job.id) is None
    assert sim.task(job.bfl_id)["polls"] == 0


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


def test_a_job_ended_keeping_its_slot_while_its_poll_was_under_way_is_due_at_once_not_at_the_checks_hold(svc, sim):
    job = _sent(svc, "[pending] canceled while its poll is under way")
    claim = time.time() + 120
    svc.redis.zadd(KEYS.due, {job.id: 0})
    assert job.id in svc.jobs.claim_due(time.time(), 100, claim)
    assert svc.jobs.confirm_claim(job.id, claim, claim)  # the check began: the job is held until its hold's end
    before = time.time()

    # It ends as the check polls it: the check, finding it no longer submitted, cannot reschedule it.
    canceling.cancel_job(svc, ADMIN, job.id)
    assert not svc.jobs.update(job.id, only_in=(st.SUBMITTED,), due=time.time() + 10)

    # Due at once for its task's poll (steps/running_on.py), not two minutes on at the hold's end.
    assert svc.jobs.due_at(job.id) <= time.time() and svc.jobs.due_at(job.id) >= before - 0.001
    assert svc.slots.holds(job)
