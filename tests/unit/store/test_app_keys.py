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


def test_a_keys_reads_spend_its_own_bucket_and_leave_another_keys_alone(make_services):
    """The read rate (lua/app_key_take_read.lua): 60 a minute, 6 at once. The key reading flat out is refused once
    its bucket is empty, told when the next read fits, and refills at its rate; the other key reads at once."""
    svc = make_services(DB)
    keys = svc.store.app_keys
    attacker, other = "key_00000000000000a1", "key_00000000000000b2"

    burst = [keys.take_read(attacker, 60, 6, 1, 100.0) for _ in range(7)]
    assert burst == [0.0] * 6 + [pytest.approx(1.0)]  # one unit a second comes back
    assert keys.take_read(attacker, 60, 6, 5, 100.5) == pytest.approx(4.5)  # a page of 5 waits for 5 units
    assert [keys.take_read(other, 60, 6, 1, 100.0) for _ in range(6)] == [0.0] * 6  # its own bucket, full
    assert keys.take_read(attacker, 60, 6, 1, 101.0) == 0.0  # refilled by one; the refusals counted nothing
    assert keys.take_read(attacker, 60, 6, 1, 101.0) > 0
    assert keys.take_read(attacker, 60, 6, 6, 107.0) == 0.0  # full again 6 s after its last read
    assert keys.take_read(attacker, 60, 6, 99, 113.0) == 0.0  # a read never costs more than the bucket holds


def test_a_read_wait_is_never_longer_than_its_cost_takes_to_come_back_though_another_process_read_its_clock_later(
        make_services):
    svc = make_services(DB)
    keys = svc.store.app_keys

    assert keys.take_read("key_00000000000000c3", 60, 1, 1, 105.0) == 0.0  # a process whose 'now' was read later
    assert keys.take_read("key_00000000000000c3", 60, 1, 1, 100.0) == pytest.approx(1.0)  # not 6 s


def test_a_read_clock_expires_once_its_bucket_is_full(make_services):
    svc = make_services(DB)
    keys = svc.store.app_keys

    keys.take_read("key_00000000000000d4", 600, 60, 5, time.time())
    assert 0 < svc.redis.pttl(KEYS.key_reads("key_00000000000000d4")) <= 500  # 5 units of 100 ms: nothing kept past it


def test_a_keys_own_read_and_item_limits_are_kept_and_else_the_services_hold(make_services):
    from fluxhook.lifecycle.steps.key_fields import new_key

    svc = make_services(DB)
    keys, config = svc.store.app_keys, svc.config
    own, _ = new_key({"name": "own", "reads_per_minute": 30, "items_per_minute": 500, "items_per_day": 9000},
                     time.time())
    plain, _ = new_key({"name": "plain"}, time.time())
    keys.create(own)
    keys.create(plain)

    kept = keys.get(own.id)
    assert (kept.reads_per_minute, kept.items_per_minute, kept.items_per_day) == (30, 500, 9000)
    assert (kept.reads_limit(config), kept.items_minute_limit(config), kept.items_day_limit(config)) == (30, 500, 9000)
    default = keys.get(plain.id)
    assert (default.reads_per_minute, default.items_per_minute, default.items_per_day) == (None, None, None)
    assert (default.reads_limit(config), default.items_minute_limit(config), default.items_day_limit(config)) == (
        config.reads_per_minute, config.items_per_minute, config.items_per_day)

    keys.change(own.id, {"items_per_day": 10}, unset=("reads_per_minute",))
    changed = keys.get(own.id)
    assert (changed.reads_limit(config), changed.items_day_limit(config)) == (config.reads_per_minute, 10)
