"""What an app key's limits allow (fluxhook/lifecycle/steps/key_limits.py) on a real Redis: requests_per_minute,
the credits a key may still spend today, the size of its items bucket, what the doctor and the Keys page tell of
a key near its limits, and its route: the route a new job records, as its key's accounts or region and the account
it names narrow every configured account, the refusals of an account it may not use or that does not exist, and the
account a tracked task is polled through (which account then sends a job is the slots' business, tests/unit/store/).
Its reads: test_key_reads.py. Over HTTP: tests/e2e/api/test_key_limits.py, tests/e2e/accounts/test_routing_and_failover.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.batch import MAX_ITEMS
from fluxhook.core.errors import Forbidden, InvalidRequest, RateLimited
from fluxhook.credits import accounting
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import key_limits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.key_limits import route_of, tracking_account
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS

DB = 15  # no other unit test uses it; make_services flushes it before and after

PRO, FINETUNED = "flux-2-pro", "flux-pro-1.1-ultra-finetuned"
# eu and us in their regions, spare in none; us and spare at one endpoint (a finetune there has one home).
ACCOUNTS = {"BFL_ACCOUNTS": "eu,us,spare",
            "BFL_EU_API_KEY": "eu-secret-key", "BFL_EU_API_BASE": "https://api.eu.example", "BFL_EU_REGION": "eu",
            "BFL_US_API_KEY": "us-secret-key", "BFL_US_API_BASE": "https://api.us.example", "BFL_US_REGION": "us",
            "BFL_SPARE_API_KEY": "spare-secret-key", "BFL_SPARE_API_BASE": "https://api.us.example",
            "API_HOST_ALLOWLIST": "api.eu.example,api.us.example"}


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


@pytest.fixture()
def routed(make_services):
    return make_services(DB, **ACCOUNTS)


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


def _key(**limits) -> Caller:
    return Caller(AppKey(id="key_0123456789abcdef", name="shop", prefix="fhk_0123", secret_sha256="0" * 64, **limits))


def test_a_job_that_names_nothing_may_use_every_account_its_key_allows(routed):
    assert route_of(routed, ADMIN, PRO, None) is None
    assert route_of(routed, _key(), PRO, None) is None
    assert route_of(routed, _key(accounts=("us", "spare")), PRO, None) == "a:spare,us"
    assert route_of(routed, _key(region="eu"), PRO, None) == "r:eu"


def test_a_job_naming_an_account_goes_only_through_it(routed):
    assert route_of(routed, ADMIN, PRO, "spare") == "a:spare"
    assert route_of(routed, _key(accounts=("us", "spare")), PRO, "us") == "a:us"
    assert route_of(routed, _key(region="us"), PRO, "us") == "a:us"


def test_an_account_the_key_may_not_use_is_forbidden_and_one_that_does_not_exist_is_invalid(routed):
    with pytest.raises(Forbidden) as refused:
        route_of(routed, _key(accounts=("us",)), PRO, "eu")
    assert refused.value.code == "account_not_allowed" and refused.value.status == 403
    with pytest.raises(Forbidden):
        route_of(routed, _key(region="eu"), PRO, "spare")
    with pytest.raises(InvalidRequest, match="no account 'elsewhere'"):
        route_of(routed, ADMIN, PRO, "elsewhere")
    # A key whose accounts were all removed since: its jobs could never be sent.
    with pytest.raises(InvalidRequest, match="match no account"):
        route_of(routed, _key(accounts=("gone",)), PRO, None)


def test_a_finetune_must_name_its_account_unless_its_key_allows_one_endpoint(routed):
    with pytest.raises(InvalidRequest, match="name its 'account'"):
        route_of(routed, ADMIN, FINETUNED, None)
    assert route_of(routed, ADMIN, FINETUNED, "eu") == "a:eu"
    # us and spare share one endpoint: the finetune lives there whichever of them sends it.
    assert route_of(routed, _key(accounts=("us", "spare")), FINETUNED, None) == "a:spare,us"


def test_a_tracked_task_is_polled_through_the_account_named_else_the_first_its_key_may_use(routed):
    assert tracking_account(routed, ADMIN, None) == "eu"
    assert tracking_account(routed, ADMIN, "spare") == "spare"
    assert tracking_account(routed, _key(accounts=("spare", "us")), None) == "us"  # in BFL_ACCOUNTS' order
    assert tracking_account(routed, _key(region="us"), None) == "us"
    with pytest.raises(Forbidden):
        tracking_account(routed, _key(region="us"), "eu")
