"""Sending a job that holds a slot (fluxhook/lifecycle/steps/submission.py, step by step in real Redis): a job
waiting for the daily budget's reservation "sent alone" stays out of line until it settles, a slot handed back for
the budget goes on at once, not at the next sweep, and a job of a revoked key is never sent. Through the Procfile's
processes: tests/e2e/credits/test_budget_liveness.py."""

from __future__ import annotations

import json
import time

import pytest

from conftest import ready_payload
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL
from fluxhook.core.job import Job
from fluxhook.core.live import WATCHED_POLL_DUE
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import budget
from fluxhook.credits.reports import spent_today
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps import reconciling, submission, timeline
from fluxhook.store.app_keys import AppKey
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.keys import KEYS
from helpers import gateway_timing_out
from slot_helpers import _queued, in_flight

LIMIT = 100
# Models the catalog cannot bound (tests/models.toml): their requests go alone.
UNPRICED = "flux-unpriced-a"
UNIT_DB = 6
REVOKED_DB = 12


@pytest.fixture()
def svc(make_services):
    return make_services(UNIT_DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="2")


def _come_due(svc, job: Job) -> CheckOutcome:
    """The sweep's check of the job waiting out of line, as if its wait were over."""
    claim = time.time() + 60
    assert svc.jobs.claim_due(time.time() + budget.ALONE_RECHECK + 1, 10, claim) == [job.id]
    return checking.check_job(svc, job.id, claim)


def test_a_job_waiting_for_the_one_sent_alone_stays_out_of_line_until_it_settles(svc, sim):
    waiting = _queued(svc.jobs, prompt="waits")
    alone = _queued(svc.jobs, UNPRICED, prompt="alone")
    assert budget.reserve(svc, alone.id, alone.model, alone.input).admitted  # unpriced: alone
    assert svc.slots.acquire(waiting) and submission.submit(svc, waiting.id) == st.QUEUED
    assert not svc.slots.holds(waiting) and svc.slots.waiting(waiting.pool) == 0
    # Its wait is over, the reservation sent alone is not: it stays out of line, and takes no slot from it.
    assert _come_due(svc, waiting) == CheckOutcome.RESCHEDULED
    assert svc.slots.waiting(waiting.pool) == 0 and svc.jobs.due_at(waiting.id) > time.time()
    assert svc.slots.acquire(alone)
    svc.store.effects.apply([ReleaseBudget(alone.id)])  # settled: BFL stated its price
    assert _come_due(svc, waiting) == CheckOutcome.REQUEUED
    assert svc.slots.waiting(waiting.pool) == 1


def test_a_slot_handed_back_for_the_budget_goes_on_at_once_not_at_the_next_sweep(svc, sim):
    waiting = _queued(svc.jobs, prompt="waits")
    assert budget.reserve(svc, "job_alone", UNPRICED, {"prompt": "alone"}).admitted
    assert svc.slots.acquire(waiting)
    svc.redis.delete(KEYS.slot_freed)
    assert submission.submit(svc, waiting.id) == st.QUEUED
    assert svc.redis.llen(KEYS.slot_freed) == 1  # a worker's dispatcher wakes for it


def test_a_job_of_a_revoked_key_is_never_sent(make_services, sim):
    svc = make_services(REVOKED_DB)
    svc.store.app_keys.create(AppKey(id="key_00000000000000cc", name="k", prefix="fhk_0000", secret_sha256="x"))
    svc.store.app_keys.revoke("key_00000000000000cc", time.time())
    job = _queued(svc.jobs, key_id="key_00000000000000cc")  # created as the revocation was under way
    assert svc.slots.acquire(job)

    assert submission.submit(svc, job.id) == st.FAILED

    assert svc.jobs.get(job.id).error["code"] == "key_revoked"
    assert sim.stats()["submitted"] == 0
    assert in_flight(svc.slots, svc.slots.pool_of(job)) == 0


def test_a_workers_send_whose_answer_never_came_is_submitted_awaiting_its_task_with_one_account(make_services, sim):
    with gateway_timing_out() as (posted, base):
        svc = make_services(UNIT_DB, BFL_API_BASE=base)
        job = _queued(svc.jobs, prompt="[pending] lost answer")
        assert svc.slots.acquire(job)
        assert submission.submit(svc, job.id) == st.SUBMITTED
    waiting = svc.jobs.get(job.id)
    assert (waiting.status, waiting.bfl_id, waiting.error) == (st.SUBMITTED, None, None)  # not failed
    assert reconciling.awaits_task(waiting) and svc.slots.holds(waiting)
    assert posted == ["/v1/flux-2-pro"]  # sent once, never again
    # No limit is set, yet its bound counts as spent until BFL states a price.
    assert waiting.counted_spend and spent_today(svc, time.time()) == waiting.counted_spend


def test_a_sent_jobs_record_frees_its_lock_takes_what_came_early_and_tells_its_timeline(svc, sim):
    job = _queued(svc.jobs, prompt="sent")
    assert svc.slots.acquire(job)
    svc.store.kept.keep_for_job(job.id, json.dumps(ready_payload("task-of-another", "https://x/1.png")).encode())
    svc.store.watching.watch(job.id, 30, time.time() + 60)  # someone looks at it as it is sent
    svc.redis.set(KEYS.strikes(DEFAULT_POOL, "default"), 2)
    before = time.time()
    assert submission.submit(svc, job.id) == st.SUBMITTED
    sent = svc.jobs.get(job.id)
    assert not svc.redis.exists(KEYS.submit_lock(job.id))  # freed with the record, not after
    assert not svc.redis.exists(KEYS.kept_for_job(job.id)) and sent.bfl_status == st.BFL_PENDING  # taken, not its task's
    assert svc.jobs.due_at(job.id) <= before + WATCHED_POLL_DUE + 1  # polled at the watched pace
    assert [e["kind"] for e in timeline.recent(svc.store.timeline, job.id)] == ["submission"]
    assert svc.redis.ttl(KEYS.timeline(job.id)) > 0 and not svc.redis.exists(KEYS.strikes(DEFAULT_POOL, "default"))


def test_a_sender_that_stalled_past_its_lease_sends_nothing_once_its_slot_went_back(svc, sim):
    job = _queued(svc.jobs, prompt="stalled")
    assert svc.slots.acquire(job)
    # Its sender stalled before its lock; the sweep found the lease over and put the job back in line, its slot freed.
    assert svc.slots.requeue(job)
    sent = sim.stats()["submitted"]

    assert submission.submit(svc, job.id) == submission.SKIPPED
    assert sim.stats()["submitted"] == sent  # nothing sent without a slot
    assert svc.jobs.get(job.id).status == st.QUEUED and not svc.redis.exists(KEYS.submit_lock(job.id))
    # Still in line, so the next dispatch gives it a slot and a sender, which sends it.
    assert svc.slots.dispatch().jobs == [job.id]
    assert submission.submit(svc, job.id) == st.SUBMITTED and sim.stats()["submitted"] == sent + 1


def test_refusals_of_submissions_in_flight_together_count_as_one_round_of_backoff(svc, sim):
    # BFL's window met by two sends at once: both refused with Retry-After 1. The second refusal answers a send made
    # before the first one's pause began, so the pool backs off once, not twice; after the pause, the next counts.
    first, second = _queued(svc.jobs, prompt="one"), _queued(svc.jobs, prompt="two")
    assert svc.slots.acquire(first) and svc.slots.acquire(second)
    strikes = KEYS.strikes(DEFAULT_POOL, "default")
    assert submission.wait_for_room(svc, first, 1.0) == 1.0
    assert submission.wait_for_room(svc, second, 1.0) == 1.0
    assert int(svc.redis.get(strikes)) == 1
    svc.redis.delete(KEYS.paused(DEFAULT_POOL, "default"))  # the pause is over; BFL refuses the next send too
    submission.wait_for_room(svc, first, 1.0)
    assert int(svc.redis.get(strikes)) == 2
