"""App keys (fluxhook/lifecycle/app_keys.py) in-process on a real Redis: the admin's use cases (create, change) and
their refusals, the per-process resolver (only a secret's SHA-256 kept, revocation and expiry refused with what to
do, a read per key per CACHE_SECONDS, last_used_at written at most once per TOUCH_EVERY), requests_per_minute, and
what the doctor tells of a key near its limits. The record in Redis: tests/unit/store/test_app_keys.py; over HTTP:
tests/e2e/api/test_app_keys.py and test_key_limits.py."""

from __future__ import annotations

import hashlib
import time

import pytest

from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked, RateLimited, Unauthorized
from fluxhook.credits import accounting
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import callers, key_limits
from fluxhook.lifecycle.steps.callers import ADMIN, CACHE_SECONDS, TOUCH_EVERY, Caller, KeyResolver
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import DEFAULT_WEIGHT

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


class Clock:
    """A resolver's clock, moved by hand (``KeyResolver`` takes one)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_new_keys_secret_makes_its_caller_and_only_its_sha256_is_kept(svc):
    key, secret = key_admin.create_key(svc, {"name": " shop ", "models": ["flux-2-pro"]}, time.time())

    assert (key.name, key.models, key.weight, callers.key_id_in(secret)) == ("shop", ("flux-2-pro",),
                                                                               DEFAULT_WEIGHT, key.id)
    record = svc.redis.hgetall(KEYS.app_key(key.id))
    assert record[b"secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest().encode()
    assert secret.encode() not in b"".join(record.values())
    resolver = KeyResolver(svc.store.app_keys)
    assert resolver.caller(secret).key_id == key.id
    assert resolver.caller(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None  # its id, not its secret
    assert resolver.caller("fhk_not-ours") is None and resolver.refuses("fhk_not-ours")


@pytest.mark.parametrize(("body", "says"), [
    ({"models": ["flux-2-pro"]}, "'name' is required"),
    ({"name": "shop", "colour": "red"}, "unknown field 'colour'"),
    ({"name": "shop", "max_active": 0}, "'max_active' must be a whole number from 1 to 10000"),
    ({"name": "shop", "expires_at": "2001-01-01T00:00:00Z"}, "'expires_at' must be in the future"),
    ({"name": "shop", "expires_at": "2099-01-01T00:00:00"}, "with its zone"),
    ({"name": "shop", "accounts": ["elsewhere"]}, "there is no BFL account 'elsewhere'"),
    ({"name": "shop", "region": "mars"}, "no BFL account has region 'mars'"),
])
def test_a_bad_body_creates_no_key_and_says_what_to_send(svc, body, says):
    with pytest.raises(InvalidRequest, match=says):
        key_admin.create_key(svc, body, time.time())

    assert svc.store.app_keys.ids() == []


def test_a_change_sets_limits_and_null_removes_one_but_a_revoked_or_unknown_key_does_not_change(svc):
    key, _ = key_admin.create_key(svc, {"name": "shop", "max_active": 3, "weight": 5}, time.time())

    changed = key_admin.change_key(svc, key.id, {"requests_per_minute": 10, "max_active": None, "weight": None},
                                  time.time())

    assert (changed.requests_per_minute, changed.max_active, changed.weight) == (10, None, DEFAULT_WEIGHT)
    assert svc.store.app_keys.get(key.id) == changed
    with pytest.raises(KeyNotFound):
        key_admin.change_key(svc, "key_00000000000000ff", {"name": "x"}, time.time())
    with pytest.raises(KeyNotFound):
        key_admin.find_key(svc, "not-a-key-id")
    svc.store.app_keys.revoke(key.id, time.time())
    with pytest.raises(KeyRevoked):
        key_admin.change_key(svc, key.id, {"name": "back again"}, time.time())
    assert svc.store.app_keys.get(key.id).name == "shop"


def test_a_revoked_or_expired_key_is_refused_with_what_to_do_once_the_resolvers_cache_lapses(svc):
    clock = Clock()
    revoked, revoked_secret = key_admin.create_key(svc, {"name": "old"}, clock.now)
    expiring, expiring_secret = key_admin.create_key(svc, {"name": "trial", "expires_at": "2099-01-01T00:00:00Z"},
                                                    clock.now)
    resolver = KeyResolver(svc.store.app_keys, clock=clock)
    assert resolver.caller(revoked_secret) is not None

    svc.store.app_keys.revoke(revoked.id, clock.now)
    assert resolver.caller(revoked_secret) is not None  # read CACHE_SECONDS ago at most: trusted until then
    clock.now += CACHE_SECONDS
    with pytest.raises(Unauthorized, match="revoked.*ask an admin"):
        resolver.caller(revoked_secret)
    assert resolver.refuses(revoked_secret)

    clock.now = expiring.expires_at
    with pytest.raises(Unauthorized, match="expired at 2099-01-01T00:00:00Z"):
        resolver.caller(expiring_secret)


def test_a_keys_use_is_written_at_most_once_per_touch_interval(svc):
    clock = Clock()
    key, secret = key_admin.create_key(svc, {"name": "busy"}, clock.now)
    resolver = KeyResolver(svc.store.app_keys, clock=clock)

    resolver.caller(secret)
    first = svc.store.app_keys.get(key.id).last_used_at
    clock.now += TOUCH_EVERY - 1
    resolver.caller(secret)
    assert svc.store.app_keys.get(key.id).last_used_at == first == pytest.approx(clock.now - TOUCH_EVERY + 1)
    clock.now += 1
    resolver.caller(secret)
    assert svc.store.app_keys.get(key.id).last_used_at == pytest.approx(clock.now)


def test_requests_per_minute_counts_only_requests_not_given_back_and_an_admin_has_no_limit(svc):
    key, _ = key_admin.create_key(svc, {"name": "limited", "requests_per_minute": 1}, time.time())
    caller, now = Caller(key), time.time()

    taken = key_limits.take_request(svc.store.app_keys, caller, now)
    key_limits.give_back_request(svc.store.app_keys, taken)  # refused after all
    key_limits.take_request(svc.store.app_keys, caller, now)
    with pytest.raises(RateLimited) as limited:
        key_limits.take_request(svc.store.app_keys, caller, now + 1)

    assert limited.value.retry_after == pytest.approx(59, abs=0.01)
    assert key_limits.take_request(svc.store.app_keys, ADMIN, now) is None


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
