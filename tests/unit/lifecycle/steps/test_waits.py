"""Why queued jobs wait (fluxhook/lifecycle/steps/waits.py), in-process on a real Redis and the simulator: read from the
slots for a job in line, recorded for the budget's and BFL's refusals (one timeline entry per new reason, not one per
re-check), gone once the job leaves ``queued``; and an app key's waiting jobs counted by reason, those the budget
keeps out of line too. The rules themselves: tests/unit/core/test_wait_reasons.py; over HTTP:
tests/e2e/api/test_key_limits.py and tests/e2e/worker/test_checking.py."""

from __future__ import annotations

import dataclasses
import time

import pytest

from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import checking, creating, key_admin, submitting
from fluxhook.lifecycle.steps import timeline, waits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.lifecycle.sweep import wake_held_at_start
from fluxhook.store.jobs import WAIT_FIELDS
from fluxhook.store.keys import KEYS
from helpers import commands_during

DB = 6
LIMIT = 100
PRO, KONTEXT = "flux-2-pro", "flux-kontext-max"
UNPRICED = "flux-unpriced-a"  # the catalog cannot bound it (tests/models.toml): its request goes alone
MICRO = accounting.MICRO


@pytest.fixture()
def svc(make_services):
    return make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="2", BFL_MODEL_LIMITS=f"{KONTEXT}=1")


def _queued(svc, model: str = PRO, key_id: str | None = None) -> Job:
    """A queued job as ``create_job`` records it, before it asks for a slot."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=model, input={"prompt": "waits"},
              pool=pool_for(model, svc.config.bfl_model_limits), created_at=now, updated_at=now, key_id=key_id)
    svc.jobs.create(job)
    return job


def _holding(svc, model: str = PRO, key_id: str | None = None) -> Job:
    job = _queued(svc, model, key_id)
    assert svc.slots.acquire(job)
    return job


def _entries(svc, job: Job) -> list[dict]:
    return [e for e in timeline.recent(svc.store.timeline, job.id) if e["kind"] == "waiting"]


def _come_due(svc, job: Job) -> CheckOutcome:
    """The sweep's check of a job waiting out of line, brought due as a raised limit brings it."""
    claim = time.time() + 120
    assert waits.wake_held(svc, job.key_id) >= 1
    assert job.id in svc.jobs.claim_due(time.time() + 1, 10, claim)
    return checking.check_job(svc, job.id, claim)


def _key(svc, **limits) -> Caller:
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", **limits}, time.time())
    return Caller(key)


def _spend(svc, amount: float, key_id: str | None = None) -> None:
    field = accounting.spent_field(key_id) if key_id else accounting.SPENT
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), field, int(amount * MICRO))


# --- in line: the slots say why --------------------------------------------------------------------------------

def test_in_line_a_job_waits_for_bfl_slots_or_its_models_own_limit(svc):
    kontext, pro = _holding(svc, KONTEXT), _holding(svc, PRO)
    later_kontext, later_pro = _queued(svc, KONTEXT), _queued(svc, PRO)
    assert not svc.slots.acquire(later_kontext) and not svc.slots.acquire(later_pro)

    assert waits.of_jobs(svc, [kontext, later_kontext, later_pro]) == [
        None, Waiting(WaitReason.MODEL_LIMIT), Waiting(WaitReason.BFL_SLOTS)]  # a job holding a slot waits for nothing
    svc.jobs.transition(pro.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    # A slot frees: flux-kontext-max still waits for its own limit, the other job for its turn (the dispatcher).
    assert waits.of(svc, svc.jobs.get(later_kontext.id)) == Waiting(WaitReason.MODEL_LIMIT)
    assert svc.slots.dispatch().jobs == [later_pro.id] and waits.of(svc, svc.jobs.get(later_pro.id)) is None


def test_a_key_at_its_max_active_waits_for_it_while_others_go(svc):
    app = _key(svc, max_active=1)
    _holding(svc, key_id=app.key_id)
    second = _queued(svc, key_id=app.key_id)
    assert not svc.slots.acquire(second)
    admins = _queued(svc)
    assert svc.slots.acquire(admins)  # the other slot: the key's own limit holds only its own jobs

    assert waits.of(svc, second) == Waiting(WaitReason.KEY_MAX_ACTIVE)
    assert waits.of_keys(svc, [app.key_id])[app.key_id] == waits.KeyJobs(
        active=1, queued=1, by_reason={"key_max_active": 1})


def test_a_new_job_that_waits_says_why_in_its_timeline(svc):
    for n in range(2):
        creating.create_job(svc, ADMIN, creating.JobRequest(PRO, {"prompt": f"holds {n}"}), submit_here=False)
    job = creating.create_job(svc, ADMIN, creating.JobRequest(PRO, {"prompt": "waits"}), submit_here=False).job

    assert job.status == st.QUEUED
    assert [(e["reason"], e.get("until")) for e in _entries(svc, job)] == [("bfl_slots", None)]
    assert present(svc.config, job, waits.of(svc, job))["waiting"] == {"reason": "bfl_slots"}


def test_a_new_job_s_wait_goes_on_its_timeline_in_the_step_that_puts_it_in_line(svc):
    app = _key(svc, max_active=1)
    _holding(svc, key_id=app.key_id)
    made: list = []
    commands = commands_during(svc.redis, DB, lambda: made.append(creating.create_job(
        svc, app, creating.JobRequest(PRO, {"prompt": "waits its turn"}), submit_here=False)))
    [created] = made

    # The join's script writes it, with what held the job back: no command of its own after the join.
    timeline_key = KEYS.timeline(created.job.id)
    pushed = [c for c in commands if c["command"].startswith(f"LPUSH {timeline_key} ")]
    assert [c["client_type"] for c in pushed] == ["lua"] and '"line":' in pushed[0]["command"]
    naming = [c["command"] for c in commands if c["client_type"] != "lua" and timeline_key in c["command"]]
    assert len(naming) == 1 and f" {KEYS.line(created.job.pool)} " in naming[0]  # the join, which names its line
    # Read back, the reason is named from that state as the request named it.
    assert created.waiting == Waiting(WaitReason.KEY_MAX_ACTIVE)
    assert [(e["reason"], "line" in e) for e in _entries(svc, created.job)] == [("key_max_active", False)]


def test_a_new_job_s_wait_on_its_timeline_says_until_when_bfl_s_pause_holds_it_as_its_request_said(svc):
    held = _holding(svc)
    assert svc.slots.requeue(held, 30.0)  # BFL said it is full: the pool pauses 30 s at the account
    created = creating.create_job(svc, ADMIN, creating.JobRequest(PRO, {"prompt": "paused"}), submit_here=False)

    assert created.waiting.reason == WaitReason.BFL_CAPACITY and created.waiting.until > time.time() + 25
    assert [{k: e[k] for k in ("reason", "until")} for e in _entries(svc, created.job)] == [created.waiting.to_api()]


# --- BFL's refusal: recorded, until its pause ends ---------------------------------------------------------

def test_bfl_out_of_capacity_is_bfl_capacity_until_its_pause_ends(svc, sim):
    sim.settings(out_of_capacity=True)
    job = _holding(svc)
    before = time.time()

    assert submitting.submit_queued(svc, job.id) == st.QUEUED

    waiting = waits.of(svc, svc.jobs.get(job.id))
    assert waiting.reason == WaitReason.BFL_CAPACITY and before < waiting.until <= time.time() + 60
    recorded = svc.jobs.get(job.id)
    assert recorded.waiting_reason == "bfl_capacity" and recorded.waiting_until == pytest.approx(waiting.until, abs=1)
    assert [e["reason"] for e in _entries(svc, job)] == ["bfl_capacity"]
    # Refused again (the pause over): the same reason, a later end; no second entry.
    svc.redis.delete(KEYS.paused(job.pool))
    assert svc.slots.dispatch().jobs == [job.id]
    assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert [e["reason"] for e in _entries(svc, job)] == ["bfl_capacity"]
    # Sent at last: it waits for nothing, and its record keeps no wait.
    sim.settings(out_of_capacity=False)
    svc.redis.delete(KEYS.paused(job.pool))
    assert svc.slots.dispatch().jobs == [job.id] and submitting.submit_queued(svc, job.id) == st.SUBMITTED
    sent = svc.jobs.get(job.id)
    assert waits.of(svc, sent) is None and (sent.waiting_reason, sent.waiting_until) == (None, None)
    assert not svc.redis.hexists(KEYS.job(job.id), WAIT_FIELDS[0])
    assert present(svc.config, sent, waits.of(svc, sent))["waiting"] is None


# --- the budget: recorded out of line, counted among the key's queued ------------------------------------------

def test_the_days_credits_spent_is_daily_credits_until_midnight_once_in_the_timeline(svc, sim):
    job = _holding(svc)
    _spend(svc, LIMIT)
    now = time.time()

    assert submitting.submit_queued(svc, job.id) == st.QUEUED

    waiting = waits.of(svc, svc.jobs.get(job.id))
    assert waiting.reason == WaitReason.DAILY_CREDITS
    assert waiting.until == pytest.approx(now + budget.seconds_until_next_day(now), abs=2)
    assert _come_due(svc, svc.jobs.get(job.id)) == CheckOutcome.RESCHEDULED  # tried again: still spent
    assert waits.of(svc, svc.jobs.get(job.id)) == waiting
    assert len(_entries(svc, job)) == 1  # a new reason is said once, not at each re-check
    assert _refusals(svc) == 1  # and the refusal is counted once
    assert sim.stats()["submitted"] == 0


def _refusals(svc) -> float:
    """``fluxhook_submissions_total{outcome="budget_exceeded"}`` as recorded."""
    (field, _), = metrics.counted("fluxhook_submissions", outcome="budget_exceeded").increments
    return float(svc.store.metrics_fields().get(field.encode(), 0))


def test_a_keys_daily_credits_spent_is_key_daily_credits_and_its_job_counts_as_queued(svc, sim):
    app = _key(svc, daily_credits=6)
    job = _holding(svc, key_id=app.key_id)
    _spend(svc, 6, key_id=app.key_id)

    assert submitting.submit_queued(svc, job.id) == st.QUEUED

    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 0  # out of line: no line counts it
    assert waits.of(svc, svc.jobs.get(job.id)).reason == WaitReason.KEY_DAILY_CREDITS
    assert waits.of_keys(svc, [app.key_id])[app.key_id] == waits.KeyJobs(
        active=0, queued=1, by_reason={"key_daily_credits": 1})
    described = key_admin.described(svc, [app.key], time.time())[0]
    assert (described["queued"], described["queued_by_reason"]) == (1, {"key_daily_credits": 1})

    # The key's credits raised: back in line, its recorded wait gone, then sent.
    svc.redis.hdel(KEYS.usage(accounting.utc_day(time.time())), accounting.spent_field(app.key_id))
    assert _come_due(svc, svc.jobs.get(job.id)) == CheckOutcome.REQUEUED
    back = svc.jobs.get(job.id)
    assert back.waiting_reason is None and waits.of(svc, back) == Waiting(WaitReason.BFL_SLOTS)
    assert svc.slots.dispatch().jobs == [job.id] and submitting.submit_queued(svc, job.id) == st.SUBMITTED
    assert waits.of_keys(svc, [app.key_id])[app.key_id] == waits.KeyJobs(active=1, queued=0, by_reason={})


def test_a_job_waiting_for_a_price_to_settle_is_budget_settling(svc, sim):
    assert budget.reserve(svc, "job_alone", UNPRICED, {"prompt": "alone"}).admitted  # holds all that is left
    job = _holding(svc)

    assert submitting.submit_queued(svc, job.id) == st.QUEUED

    assert waits.of(svc, svc.jobs.get(job.id)) == Waiting(WaitReason.BUDGET_SETTLING)
    assert present(svc.config, job, waits.of(svc, svc.jobs.get(job.id)))["waiting"] == {"reason": "budget_settling"}


def test_a_job_waiting_out_of_line_that_ends_leaves_no_count_behind(svc, sim):
    app = _key(svc, daily_credits=6)
    ended, deleted = _holding(svc, key_id=app.key_id), _holding(svc, key_id=app.key_id)
    _spend(svc, 6, key_id=app.key_id)
    for job in (ended, deleted):
        assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert waits.of_keys(svc, [app.key_id])[app.key_id].queued == 2

    svc.jobs.transition(ended.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(deleted.id)

    assert waits.of_keys(svc, [app.key_id])[app.key_id] == waits.KeyJobs(active=0, queued=0, by_reason={})
    assert svc.redis.zcard(KEYS.aside) == 0
    assert not svc.redis.hexists(KEYS.job(ended.id), WAIT_FIELDS[0])


# --- held work sleeps until its reason ends, or its limit is raised ------------------------------------------

def _held_for_the_day(svc, app: Caller) -> Job:
    job = _holding(svc, key_id=app.key_id)
    _spend(svc, 6, key_id=app.key_id)
    assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert waits.of(svc, svc.jobs.get(job.id)).reason == WaitReason.KEY_DAILY_CREDITS
    return job


def test_a_job_held_for_its_keys_day_sleeps_until_the_day_turns_or_its_hour_is_up(svc, sim):
    app = _key(svc, daily_credits=6)
    job = _held_for_the_day(svc, app)
    now = time.time()

    # Due once, at its reason's end (or its hour's, when it fails): nothing looks at it before.
    assert svc.jobs.due_at(job.id) == pytest.approx(now + budget.recheck_in(now, job.created_at + 3600), abs=2)
    assert svc.jobs.claim_due(now + 120, 10, now + 200) == []


def test_a_raised_limit_wakes_that_keys_held_jobs_at_once_and_no_other_keys(svc, sim):
    mine, theirs = _key(svc, daily_credits=6), _key(svc, daily_credits=6)
    held, other = _held_for_the_day(svc, mine), _held_for_the_day(svc, theirs)
    other_due = svc.jobs.due_at(other.id)

    svc.redis.delete(KEYS.sweep_added)
    key_admin.change_key(svc, mine.key_id, {"daily_credits": 12}, time.time())
    # Its held job is due now, and a sweeper is woken for it; the other key's still sleeps until its own reason ends.
    assert svc.jobs.due_at(held.id) <= time.time()
    assert svc.redis.llen(KEYS.sweep_added) == 1
    assert svc.jobs.due_at(other.id) == other_due
    claim = time.time() + 120
    assert svc.jobs.claim_due(time.time() + 1, 10, claim) == [held.id]
    assert checking.check_job(svc, held.id, claim) == CheckOutcome.REQUEUED  # 6 more credits: back in line


def test_an_end_users_limits_set_wake_its_keys_held_jobs(svc, sim):
    app = _key(svc, daily_credits=6)
    job = _held_for_the_day(svc, app)

    key_admin.set_end_user_limits(svc, app.key_id, "shopper-1", {"daily_credits": 3}, time.time())

    assert svc.jobs.due_at(job.id) <= time.time()


def test_a_process_that_starts_wakes_every_keys_held_jobs(svc, sim):
    jobs = [_held_for_the_day(svc, _key(svc, daily_credits=6)) for _ in range(2)]

    assert waits.wake_held(svc, every=True) == 2

    assert all(svc.jobs.due_at(job.id) <= time.time() for job in jobs)


def test_a_process_started_with_other_daily_limits_wakes_the_held_jobs_and_one_with_the_same_wakes_none(svc, sim):
    job = _held_for_the_day(svc, _key(svc, daily_credits=6))
    wake_held_at_start(svc)  # the first start records the limits (and wakes what is held)
    svc.redis.zadd(KEYS.due, {job.id: time.time() + 3000})  # asleep again

    assert wake_held_at_start(svc) == 0  # a restart with the same settings: no wave of checks
    assert svc.jobs.due_at(job.id) > time.time() + 2000
    raised = dataclasses.replace(svc, config=dataclasses.replace(svc.config, bfl_daily_credit_limit=LIMIT * 2))
    assert wake_held_at_start(raised) == 1  # BFL_DAILY_CREDIT_LIMIT raised: looked at now
    assert svc.jobs.due_at(job.id) <= time.time()
