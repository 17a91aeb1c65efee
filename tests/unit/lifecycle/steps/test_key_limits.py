"""What an app key's limits allow (fluxhook/lifecycle/steps/key_limits.py) on a real Redis: requests_per_minute,
the credits a key may still spend today, the size of its items bucket, and what the doctor and the Keys page tell of
a key near its limits. Its reads: test_key_reads.py. Over HTTP: tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.batch import MAX_ITEMS
from fluxhook.core.errors import RateLimited
from fluxhook.credits import accounting
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import key_limits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.keys import KEYS

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def test_requests_per_minute_counts_only_requests_not_given_back_and_an_admin_has_no_limit(svc):
    key, _ = key_admin.create_key(svc, {"name": "limited", "requests_per_minute": 1}, time.time())
    caller, now = Caller(key), time.time()

    taken = key_limits.take_request(svc, caller, now)
    key_limits.give_back_request(svc, taken)  # refused after all
    key_limits.take_request(svc, caller, now)
    with pytest.raises(RateLimited) as limited:
        key_limits.take_request(svc, caller, now + 1)

    assert limited.value.retry_after == pytest.approx(59, abs=0.01)
    assert key_limits.take_request(svc, ADMIN, now) is None


def test_a_key_near_its_daily_credits_is_told_and_what_it_may_still_spend_today(svc):
    now = time.time()
    key, _ = key_admin.create_key(svc, {"name": "spender", "daily_credits": 10}, now)
    calm, _ = key_admin.create_key(svc, {"name": "calm", "daily_credits": 10}, now)
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.spent_field(key.id), accounting.to_micro(8.5))

    shown = {k["id"]: k for k in key_admin.described(svc, [key, calm], now)}

    assert shown[key.id]["spent_today"] == 8.5 and shown[calm.id]["spent_today"] == 0
    assert key_limits.near_limits(shown[key.id], now) == ["spent 8.5 of its 10 daily credits"]
    assert key_limits.near_limits(shown[calm.id], now) == []
    assert key_limits.credits_left_today(svc, key, now) == 1.5


def test_the_items_bucket_holds_half_a_minute_and_never_less_than_one_whole_batch_of_the_largest_size():
    assert MAX_ITEMS == 10_000
    assert key_limits.items_burst(20_000) == MAX_ITEMS  # the default: one largest batch at once
    assert [key_limits.items_burst(n) for n in (1, 100, 19_999, 40_000, 1_000_000)] == [
        MAX_ITEMS, MAX_ITEMS, MAX_ITEMS, 20_000, 500_000]
