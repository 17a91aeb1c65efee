"""Who sends a request (fluxhook/lifecycle/steps/callers.py) on a real Redis: the per-process resolver refuses a
revoked or expired key with what to do once its cache lapses (a read per key per CACHE_SECONDS), and writes
last_used_at at most once per TOUCH_EVERY. A new key's secret making its caller: tests/unit/lifecycle/test_key_admin.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.errors import Unauthorized
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps.callers import CACHE_SECONDS, TOUCH_EVERY, KeyResolver

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
    assert resolver.refusal(revoked_secret) is not None

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
