"""The count of slots each account holds in each pool (lua/slot_counts.lua), what the slot scripts read an account's
room from: kept by every script that takes or gives a slot, and mended from the sets wherever it may be wrong."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, KONTEXT_MAX_POOL
from fluxhook.store.keys import KEYS
from fluxhook.store.slots import Slots
from slot_helpers import _config, _queued, as_key

FAIL = {"code": "bfl_error", "message": "x"}


@pytest.fixture()
def slots(connection) -> Slots:
    return Slots(connection, _config(bfl_max_active=3, bfl_max_active_kontext_max=1))


def _count(connection, pool: str = DEFAULT_POOL) -> int | None:
    value = connection.hget(KEYS.slot_counts, KEYS.slots(pool))
    return None if value is None else int(value)


def test_each_take_and_give_back_keeps_its_pool_s_count(store, slots, connection):
    jobs = [as_key(store, _queued(store), owner) for owner in ("key_a", "key_b", "key_a")]
    for job in jobs:
        assert slots.acquire(job) == "default"
    assert (_count(connection), _count(connection, KONTEXT_MAX_POOL)) == (3, 0)
    assert store.transition(jobs[0].id, st.FAILED, error=FAIL)  # key_a's
    assert _count(connection) == 2
    assert slots.requeue(jobs[1])  # key_b's back in line, its slot given back
    assert _count(connection) == 1
    assert store.delete(jobs[2].id) is not None
    assert _count(connection) == 0 == connection.zcard(KEYS.slots(DEFAULT_POOL))
    # key_b's job, back in line, takes a slot the counts say is free.
    assert slots.dispatch().jobs == [jobs[1].id] and _count(connection) == 1


def test_a_slot_an_older_release_took_uncounted_is_counted_at_the_dispatchers_look(store, slots, connection):
    for _ in range(2):
        assert slots.acquire(as_key(store, _queued(store), "key_a")) == "default"
    # An older release on a rolling deploy takes key_b's slot and keeps no count.
    older = as_key(store, _queued(store), "key_b")
    connection.zadd(KEYS.slots(DEFAULT_POOL), {older.id: time.time()})
    connection.hset(KEYS.slot_holders, older.id, "default|key_b|1")  # its entry, as older ones wrote it
    assert _count(connection) == 2
    # The dispatcher's look for slots past their lease counts the set anew: the pool is full, so key_a's next job waits.
    assert slots.dispatch().jobs == [] and _count(connection) == 3
    assert slots.acquire(as_key(store, _queued(store), "key_a")) is None
    assert connection.zcard(KEYS.slots(DEFAULT_POOL)) == 3


def test_a_count_that_a_give_back_takes_below_zero_is_dropped_and_made_from_the_set_when_next_read(
        store, slots, connection):
    mine, theirs = as_key(store, _queued(store), "key_a"), as_key(store, _queued(store), "key_b")
    for job in (mine, theirs):
        assert slots.acquire(job) == "default"
    connection.hset(KEYS.slot_counts, KEYS.slots(DEFAULT_POOL), 0)  # as if both were an older release's
    assert store.transition(mine.id, st.FAILED, error=FAIL)
    assert _count(connection) is None  # not -1: a count below zero says nothing
    # The next job reads the set (key_b's slot), and writes what it counts with its own.
    assert slots.acquire(as_key(store, _queued(store), "key_a")) == "default"
    assert _count(connection) == 2 == connection.zcard(KEYS.slots(DEFAULT_POOL))


def test_a_count_missing_is_made_from_the_set_once_and_kept(store, slots, connection):
    assert slots.acquire(as_key(store, _queued(store), "key_a")) == "default"
    connection.delete(KEYS.slot_counts)
    waiting = [as_key(store, _queued(store), "key_b") for _ in range(3)]
    assert [slots.acquire(job) for job in waiting] == ["default", "default", None]  # held to BFL_MAX_ACTIVE
    assert (_count(connection), _count(connection, KONTEXT_MAX_POOL)) == (3, 0)
