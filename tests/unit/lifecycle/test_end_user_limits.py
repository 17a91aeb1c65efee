"""An app key's limits for each of its end users (fluxhook/lifecycle/steps/end_user_limits.py, end_user_admin.py):
past one, the key's own answer for that limit naming the end user, nothing created or counted, while the key's other
end users and another key's end user of the same name go on. In-process on a real Redis and the simulator; over
HTTP and under concurrency: tests/e2e/api/test_end_users.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import transitions as st
from fluxhook.core.errors import BudgetExceeded, EndUserBlocked, QueueFull, RateLimited
from fluxhook.core.job_filters import JobFilter
from fluxhook.credits import accounting
from fluxhook.lifecycle import end_user_admin
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller

DB = 15  # make_services flushes it before and after


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _make(svc, caller: Caller, end_user: str | None, prompt: str = "[pending] eu"):
    return create_job(svc, caller, JobRequest(PRO, {"prompt": prompt}, end_user=end_user), submit_here=False).job


def _made(svc) -> int:
    return svc.redis.zcard(KEYS.all_jobs)


def test_an_end_users_requests_per_minute_refuse_only_it(svc, sim):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 2})
    b = app_caller(svc, end_user_limits={"requests_per_minute": 2})
    for n in range(2):
        _make(svc, a, "x", f"[pending] x {n}")
    before = _made(svc)

    with pytest.raises(RateLimited) as caught:
        _make(svc, a, "x")

    assert caught.value.code == "rate_limited" and caught.value.retry_after and "end user 'x'" in caught.value.message
    assert _made(svc) == before  # nothing created
    # Its key's other end user, the same name with another key, and no end user at all go on.
    assert _make(svc, a, "y").status == st.QUEUED
    assert _make(svc, b, "x").status == st.QUEUED
    assert _make(svc, a, None).status == st.QUEUED
    assert sim.stats()["submitted"] == 0


def test_an_end_users_own_limits_override_its_keys(svc):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 1})
    end_user_admin.set_limits(svc, a.key_id, "vip", {"requests_per_minute": 3}, time.time())
    for n in range(3):
        _make(svc, a, "vip", f"[pending] vip {n}")
    with pytest.raises(RateLimited):
        _make(svc, a, "vip")
    _make(svc, a, "plain")
    with pytest.raises(RateLimited):
        _make(svc, a, "plain")

    shown = end_user_admin.show(svc, a.key_id, "vip", time.time())
    assert shown["limits"]["requests_per_minute"] == 3 and shown["effective_limits"]["requests_per_minute"] == 3


def test_an_end_users_max_queued_refuses_queue_full_and_room_comes_back_as_its_jobs_leave_the_line(svc):
    a = app_caller(svc, end_user_limits={"max_queued": 2})
    first = _make(svc, a, "x")
    _make(svc, a, "x")

    with pytest.raises(QueueFull) as caught:
        _make(svc, a, "x")

    assert caught.value.code == "queue_full" and "end user 'x'" in caught.value.message
    assert _make(svc, a, "y").status == st.QUEUED
    svc.jobs.transition(first.id, st.CANCELED, only_from=(st.QUEUED,))
    assert _make(svc, a, "x").status == st.QUEUED  # the canceled job's room came back


def test_a_blocked_end_user_is_refused_403_until_unblocked_and_others_go_on(svc):
    a, b = app_caller(svc), app_caller(svc)
    shown = end_user_admin.block(svc, a.key_id, "x", time.time())
    assert shown["blocked"] and shown["blocked_reason"] == "manual"
    before = _made(svc)

    with pytest.raises(EndUserBlocked) as caught:
        _make(svc, a, "x")

    assert (caught.value.status, caught.value.code) == (403, "end_user_blocked")
    assert "end user 'x'" in caught.value.message and "admin" in caught.value.message
    assert _made(svc) == before
    assert _make(svc, a, "y").status == st.QUEUED and _make(svc, b, "x").status == st.QUEUED
    end_user_admin.unblock(svc, a.key_id, "x", time.time())
    assert _make(svc, a, "x").status == st.QUEUED


def test_an_end_user_moderated_as_often_as_its_keys_limit_is_blocked_for_the_day(svc):
    a = app_caller(svc, end_user_moderation_limit=2)
    day = accounting.utc_day(time.time())
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:moderated", 2)

    with pytest.raises(EndUserBlocked) as caught:
        _make(svc, a, "x")

    assert "moderated 2 of its jobs today" in caught.value.message and "end_user_moderation_limit" in caught.value.message
    assert end_user_admin.show(svc, a.key_id, "x", time.time())["blocked_reason"] == "moderated"
    assert _make(svc, a, "y").status == st.QUEUED
    end_user_admin.unblock(svc, a.key_id, "x", time.time())
    assert _make(svc, a, "x").status == st.QUEUED  # its moderations until the unblock are forgiven
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:moderated", 2)
    with pytest.raises(EndUserBlocked):
        _make(svc, a, "x")


def test_an_end_users_daily_credits_spent_refuse_it_402_naming_it(svc):
    a = app_caller(svc, end_user_limits={"daily_credits": 1})
    day = accounting.utc_day(time.time())
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:credits", accounting.to_micro(1))
    before = _made(svc)

    with pytest.raises(BudgetExceeded) as caught:
        _make(svc, a, "x")

    assert caught.value.status == 402 and "end user 'x'" in caught.value.message
    assert _made(svc) == before
    assert _make(svc, a, "y").end_user_daily_credits == 1.0
    assert end_user_admin.show(svc, a.key_id, "x", time.time())["spent_today"] == 1.0


def test_the_end_user_is_on_the_job_and_filters_the_list(svc):
    a = app_caller(svc)
    mine = _make(svc, a, "x")
    _make(svc, a, "y")
    admins = _make(svc, ADMIN, "x")

    assert svc.jobs.get(mine.id).to_api()["end_user"] == "x"
    listed, _ = svc.jobs.list(JobFilter(key_id=a.key_id, end_user="x"))
    assert [j.id for j in listed] == [mine.id]
    everyone, _ = svc.jobs.list(JobFilter(end_user="x"))
    assert {j.id for j in everyone} == {mine.id, admins.id}
    assert svc.jobs.get(_make(svc, a, None).id).to_api()["end_user"] is None
