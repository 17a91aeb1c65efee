"""What an app key may create (fluxhook/store/lua/app_key_take_items.lua, app_key_give_items.lua) on a real Redis:
items against a minute's bucket and a UTC day's count, both judged before either is spent, a refusal counting
nothing, items given back counting nothing, and each key's counts its own."""

from __future__ import annotations

import pytest

from fluxhook.store.keys import KEYS

DB = 12
A, B = "key_00000000000000a1", "key_00000000000000b1"
# A UTC noon, and its day.
NOON, DAY = 1_795_824_000.0 + 12 * 3600, "2026-11-28"


@pytest.fixture()
def keys(make_services):
    svc = make_services(DB)
    svc.redis.delete(*(k for key in (A, B) for k in (KEYS.key_items(key), KEYS.key_items_today(key, DAY))))
    return svc.store.app_keys


def test_a_bucket_admits_its_burst_at_once_then_items_at_its_rate_and_another_key_is_not_held(keys):
    # 60 a minute (one a second), 10 at once.
    assert keys.take_items(A, 10, 60, 10, 1000, NOON) == ("", 0.0)
    refused, wait = keys.take_items(A, 3, 60, 10, 1000, NOON)
    assert refused == "minute" and wait == pytest.approx(3.0)
    assert keys.take_items(A, 3, 60, 10, 1000, NOON + 3) == ("", 0.0)
    assert keys.take_items(B, 10, 60, 10, 1000, NOON) == ("", 0.0)  # B's bucket is its own
    assert int(keys.connection.get(KEYS.key_items_today(A, DAY))) == 13  # the refused 3 counted nothing


def test_a_days_count_refuses_past_its_limit_until_the_day_ends_and_counts_nothing_refused(keys):
    assert keys.take_items(A, 4, 6000, 100, 5, NOON) == ("", 0.0)
    refused, wait = keys.take_items(A, 2, 6000, 100, 5, NOON + 1)
    assert refused == "day" and wait == pytest.approx(12 * 3600 - 1, abs=1)
    assert keys.take_items(A, 1, 6000, 100, 5, NOON + 2) == ("", 0.0)  # exactly to the limit
    assert keys.take_items(A, 1, 6000, 100, 5, NOON + 3)[0] == "day"
    assert keys.take_items(A, 1, 6000, 100, 5, NOON + 12 * 3600 + 1) == ("", 0.0)  # the next UTC day
    assert 12 * 3600 < keys.connection.ttl(KEYS.key_items_today(A, DAY)) <= 12 * 3600 + 3600


def test_items_given_back_count_nothing_against_the_minute_or_the_day(keys):
    assert keys.take_items(A, 10, 60, 10, 10, NOON) == ("", 0.0)
    keys.give_back_items(A, 10, 60, NOON)
    assert keys.take_items(A, 10, 60, 10, 10, NOON) == ("", 0.0)
    keys.give_back_items(A, 4, 60, NOON)
    assert keys.take_items(A, 4, 60, 10, 10, NOON) == ("", 0.0)
    assert keys.take_items(A, 1, 60, 10, 10, NOON)[0] in ("minute", "day")
