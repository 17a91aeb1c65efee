"""App key records in Redis (fluxhook/store/app_keys.py): a key's share of the slots follows its record, and its rate
window slides."""

from __future__ import annotations

import time

import pytest

from fluxhook.lifecycle import revoking
from fluxhook.store.keys import KEYS

DB = 12


def test_a_keys_share_of_the_slots_follows_its_record(make_services):
    from fluxhook.lifecycle.steps.key_fields import new_key

    svc = make_services(DB)
    keys = svc.store.app_keys
    key, _ = new_key({"name": "k", "weight": 3, "max_active": 2}, time.time())
    keys.create(key)
    share = (KEYS.share_weights, KEYS.share_max_active)
    assert [svc.redis.hget(h, key.id) for h in share] == [b"3", b"2"]

    keys.change(key.id, {"weight": 5}, unset=("max_active",))
    assert [svc.redis.hget(h, key.id) for h in share] == [b"5", None]

    revoking.revoke(svc, key.id)
    assert [svc.redis.hget(h, key.id) for h in share] == [None, None]
    assert keys.change(key.id, {"weight": 9}) == 2 and svc.redis.hget(KEYS.share_weights, key.id) is None


def test_a_rate_window_slides(make_services):
    svc = make_services(DB)
    keys = svc.store.app_keys

    assert [keys.take_request("key_00000000000000dd", 2, t) for t in (100.0, 110.0)] == [0.0, 0.0]
    assert keys.take_request("key_00000000000000dd", 2, 130.0) == pytest.approx(30.0)
    assert keys.take_request("key_00000000000000dd", 2, 160.5) == 0.0  # the first left the window
    assert keys.take_request("key_00000000000000dd", 2, 165.0) == pytest.approx(5.0)


def test_the_wait_is_never_longer_than_the_window_though_another_process_read_its_clock_later(make_services):
    svc = make_services(DB)
    keys = svc.store.app_keys

    assert keys.take_request("key_00000000000000ef", 1, 100.2) == 0.0  # a process whose 'now' was read later
    assert keys.take_request("key_00000000000000ef", 1, 100.0) == pytest.approx(60.0)  # not 60.2: Retry-After 61


def test_a_request_given_back_leaves_its_place_in_the_window(make_services):
    svc = make_services(DB)
    keys = svc.store.app_keys

    assert keys.take_request("key_00000000000000ee", 1, 100.0, "first") == 0.0
    keys.give_back_request("key_00000000000000ee", "first")
    assert keys.take_request("key_00000000000000ee", 1, 101.0, "second") == 0.0
    assert keys.take_request("key_00000000000000ee", 1, 102.0, "third") > 0
