"""An end user's daily credits at admission (``budget.admission``, ``lua/end_user_admit.lua``): a new job is admitted
while the day's spend and what its end user's jobs admitted and not yet settled may cost stay below the limit, and holds
its bound until it settles or ends; past that, 402 naming the end user and nothing created, while the key's other end
user and another key's end user of the same name go on. A job that still waits for its end user's day says so
(``end_user_daily_credits``). In-process on a real Redis; a burst over HTTP and several processes:
tests/e2e/api/test_end_user_burst.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.errors import BudgetExceeded, QueueFull
from fluxhook.core.wait_reasons import WaitReason
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle.canceling import cancel_job
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller

DB = 14
ALLOWANCE = 9  # credits: three flux-2-pro jobs of 512x512, each bounded at 3 credits by the catalog
SMALL = {"width": 512, "height": 512}


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _make(svc, caller, end_user: str, n: int = 0):
    request = JobRequest(PRO, {"prompt": f"[pending] {end_user} {n}", **SMALL}, end_user=end_user)
    return create_job(svc, caller, request, submit_here=False).job


def _holds(svc, key_id: str, end_user: str) -> set[str]:
    return {v.decode() for v in svc.redis.hkeys(KEYS.end_user_admitted(key_id, end_user))}


def _made(svc) -> int:
    return svc.redis.zcard(KEYS.all_jobs)


def test_an_end_users_jobs_not_yet_sent_count_at_admission_and_others_go_on(svc, sim):
    a = app_caller(svc, end_user_limits={"daily_credits": ALLOWANCE})
    b = app_caller(svc, end_user_limits={"daily_credits": ALLOWANCE})
    admitted = [_make(svc, a, "x", n) for n in range(3)]  # 0, 3 and 6 of 9 held: each below the limit
    before = _made(svc)

    with pytest.raises(BudgetExceeded) as caught:
        _make(svc, a, "x", 3)

    assert caught.value.status == 402 and caught.value.code == "budget_exceeded"
    assert "end user 'x'" in caught.value.message and "0 of its daily_credits 9, 9 more held" in caught.value.message
    assert _made(svc) == before  # nothing created
    assert _holds(svc, a.key_id, "x") == {j.id for j in admitted}
    assert sim.stats()["submitted"] == 0
    # The key's other end user and another key's 'x' each have their own allowance.
    assert _make(svc, a, "y").status == st.QUEUED
    assert [_make(svc, b, "x", n).status for n in range(3)] == [st.QUEUED] * 3


def test_a_job_that_ends_unsent_gives_its_hold_back(svc):
    a = app_caller(svc, end_user_limits={"daily_credits": ALLOWANCE})
    first, *_ = [_make(svc, a, "x", n) for n in range(3)]
    with pytest.raises(BudgetExceeded):
        _make(svc, a, "x", 3)

    assert cancel_job(svc, a, first.id).status == st.CANCELED

    assert first.id not in _holds(svc, a.key_id, "x")
    assert _make(svc, a, "x", 4).status == st.QUEUED


def test_a_job_refused_after_its_admission_takes_no_hold(svc):
    a = app_caller(svc, max_queued=1, end_user_limits={"daily_credits": ALLOWANCE})
    kept = _make(svc, a, "x")

    with pytest.raises(QueueFull):
        _make(svc, a, "x", 1)  # admitted by the budget, then refused by its key's full queue

    assert _holds(svc, a.key_id, "x") == {kept.id}


def test_a_job_waiting_for_its_end_users_spent_day_names_the_end_user_not_its_key(svc):
    a = app_caller(svc, daily_credits=1000, end_user_limits={"daily_credits": ALLOWANCE})
    now = time.time()
    svc.redis.hset(KEYS.end_user_day(a.key_id, accounting.utc_day(now)), "x:credits",
                   accounting.to_micro(ALLOWANCE))
    end_user = budget.EndUserBudget(a.key_id, "x", ALLOWANCE)

    refused = budget.reserve(svc, "job-x", PRO, SMALL, now, key=a.key, end_user=end_user)

    assert not refused.admitted and not refused.waits
    waiting = budget.waiting_for(svc, refused, now, a.key)
    assert waiting.reason == WaitReason.END_USER_DAILY_CREDITS == "end_user_daily_credits"
    assert waiting.until == now + budget.seconds_until_next_day(now)
    # Its key's own day spent is still its key's reason.
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.spent_field(a.key_id), accounting.to_micro(1000))
    by_key = budget.reserve(svc, "job-y", PRO, SMALL, now, key=a.key)
    assert budget.waiting_for(svc, by_key, now, a.key).reason == WaitReason.KEY_DAILY_CREDITS
