"""Turns in slot time (docs/fair-share.md; fluxhook/store/lua/slot_time.lua): a key of long tasks gets the same share
of BFL's slot time as a key of short ones, not the same number of tasks, and a slot given back before its
task reached BFL costs no turn. On a real Redis, with the clock the scripts read run by hand."""

from __future__ import annotations

import heapq
import time

import pytest

from fluxhook.core import job as st
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import CLOCK, estimate_field
from fluxhook.store.slots import Slots
from slot_helpers import _config, _queued, as_key

START = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self) -> float:
        return self.now


def _simulate(connection, lengths: dict[str, float], weights: dict[str, float], seconds: float,
              max_active: int = 4) -> dict[str, float]:
    """Every key with a backlog of tasks of its own length, for ``seconds``: each key's share of slot time."""
    clock = Clock()
    store, slots = JobStore(connection, clock=clock), Slots(connection, _config(bfl_max_active=max_active), clock=clock)
    for key, weight in weights.items():
        connection.hset(KEYS.share_weights, key, weight)
    owner_of, started = {}, []
    for key, length in lengths.items():
        for _ in range(int(seconds / length) * max_active + max_active):
            job = _queued(store)
            owner_of[job.id] = key
            if slots.acquire(as_key(store, job, key)):
                started.append(job.id)
    used = dict.fromkeys(lengths, 0.0)
    ends: list[tuple[float, str]] = []
    while True:
        for job_id in [*started, *slots.dispatch().jobs]:
            assert store.transition(job_id, st.SUBMITTED, bfl_id=f"b-{job_id}")
            heapq.heappush(ends, (clock.now + lengths[owner_of[job_id]], job_id))
        started = []
        end, job_id = heapq.heappop(ends)
        if end > START + seconds:
            break
        clock.now = end
        used[owner_of[job_id]] += lengths[owner_of[job_id]]
        assert store.transition(job_id, st.READY, result_url="https://x/r.png")
    total = sum(used.values())
    return {key: value / total for key, value in used.items()}


def test_long_and_short_tasks_share_slot_time_by_weight(connection):
    """Key A's 30 s tasks beside key B's 1 s tasks, 4 slots, 5 minutes: half the slot time each, within 10 %."""
    shares = _simulate(connection, {"key_a": 30.0, "key_b": 1.0}, {"key_a": 1, "key_b": 1}, seconds=300)
    assert shares["key_a"] == pytest.approx(0.5, abs=0.05) and shares["key_b"] == pytest.approx(0.5, abs=0.05), shares


def test_weights_divide_slot_time(connection):
    shares = _simulate(connection, {"key_a": 30.0, "key_b": 1.0}, {"key_a": 1, "key_b": 3}, seconds=600)
    assert shares["key_b"] == pytest.approx(0.75, abs=0.075), shares


def test_a_slot_given_back_before_bfl_costs_no_turn(connection, store):
    """A 429 (or the budget) sends the job back in line: its owner's next turn starts where it did."""
    slots = Slots(connection, _config(bfl_max_active=4))
    job = _queued(store)
    assert slots.acquire(as_key(store, job, "key_a"))
    charged = float(connection.hget(KEYS.fair_passes, "key_a"))
    account, owner, charge, taken, weight = connection.hget(KEYS.slot_holders, job.id).decode().split("|")
    assert charged > 0 and (account, owner, float(charge), weight) == ("default", "key_a", charged, "1")
    assert float(taken) == pytest.approx(time.time(), abs=5)
    assert slots.requeue(job, pause=0)
    assert float(connection.hget(KEYS.fair_passes, "key_a")) == pytest.approx(0.0)
    assert not connection.hexists(KEYS.slot_holders, job.id)


def test_an_owner_is_charged_what_its_tasks_took_before(connection):
    clock = Clock()
    store, slots = JobStore(connection, clock=clock), Slots(connection, _config(bfl_max_active=4), clock=clock)
    for length in (40.0, 20.0):
        job = _queued(store)
        assert slots.acquire(as_key(store, job, "key_a"))
        assert store.transition(job.id, st.SUBMITTED, bfl_id=f"b-{job.id}")
        clock.now += length
        assert store.transition(job.id, st.READY, result_url="https://x/r.png")
    # The owner's own in the pool (slot_time.lua's field: "<slots key>|<owner>").
    # A moving average: the newest task weighs a fifth.
    assert float(connection.hget(KEYS.fair_passes, estimate_field(KEYS.slots("default"), "key_a"))) == pytest.approx(36.0)
    job = _queued(store)
    before = float(connection.hget(KEYS.fair_passes, "key_a"))
    assert slots.acquire(as_key(store, job, "key_a"))  # charged its 36 s up front now, not the first guess
    assert float(connection.hget(KEYS.fair_passes, "key_a")) == pytest.approx(max(before, _clock(connection)) + 36.0)


def _clock(connection) -> float:
    return float(connection.hget(KEYS.fair_passes, CLOCK) or 0)
