"""The admin's use cases for app keys (fluxhook/lifecycle/key_admin.py) in-process on a real Redis: create, find and
change a key, and their refusals; its top end users (their own limits and blocks: steps/test_end_user_limits.py). Who
a key's secret makes: steps/test_callers.py; its fields: steps/test_key_fields.py; what its limits allow:
steps/test_key_limits.py. The record in Redis: tests/unit/store/test_app_keys.py; over HTTP:
tests/e2e/api/test_app_keys.py and test_key_limits.py."""

from __future__ import annotations

import hashlib
import time

import pytest

from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import callers
from fluxhook.lifecycle.steps.callers import KeyResolver
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import DEFAULT_WEIGHT

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


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
    assert resolver.caller("fhk_not-ours") is None and resolver.refusal("fhk_not-ours") is not None


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


def test_a_keys_end_user_limits_are_read_like_its_own_and_its_top_end_users_are_its_own(svc):
    from fluxhook.credits import accounting
    from fluxhook.store.effects import CountEndUser

    with pytest.raises(InvalidRequest, match="in 'end_user_limits': 'max_queued' must be a whole number"):
        key_admin.create_key(svc, {"name": "shop", "end_user_limits": {"max_queued": 0}}, time.time())
    with pytest.raises(InvalidRequest, match="unknown field 'weight' in 'end_user_limits'"):
        key_admin.create_key(svc, {"name": "shop", "end_user_limits": {"weight": 2}}, time.time())
    key, _ = key_admin.create_key(svc, {"name": "shop", "end_user_limits": {"daily_credits": 5}}, time.time())
    other, _ = key_admin.create_key(svc, {"name": "other"}, time.time())
    assert key_admin.find_key(svc, key.id).end_user_limits.daily_credits == 5.0
    day = accounting.utc_day(time.time())
    svc.store.effects.apply([CountEndUser(key.id, day, (("big:jobs", 2), ("big:credits", 6_000_000))),
                             CountEndUser(key.id, day, (("small:jobs", 1), ("small:credits", 3_000_000))),
                             CountEndUser(other.id, day, (("huge:jobs", 9), ("huge:credits", 90_000_000)))])

    top = key_admin.top_end_users(svc, key.id, time.time())

    assert [(u["end_user"], u["jobs"], u["credits"]) for u in top] == [("big", 2, 6.0), ("small", 1, 3.0)]
    changed = key_admin.change_key(svc, key.id, {"end_user_limits": None}, time.time())
    assert changed.end_user_limits is None
