"""Batches made one at a time over every process (fluxhook/lifecycle/batching.py, ``MAKING_AT_ONCE``): a key's batch
waits in its process's room while another key's is made, is made once that one's turn ends, and is refused 503 with
nothing made when the room is full or no turn comes in time. In-process on a real Redis; the turn another process
holds is taken through the store, as that process would."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from devtools.processes import wait_until
from fluxhook.core.errors import BatchesBusy, InvalidItems
from fluxhook.lifecycle import batching
from fluxhook.lifecycle.batching import BatchItem, BatchRequest, create_batch, list_batches
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller, batch_request

DB = 7


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)




def _batches(svc, caller: Caller) -> list:
    return list_batches(svc, caller, limit=10, cursor=None)[0]


class Room:
    """A waiting room like the web process's: a place (or none), and whether a request is inside now."""

    def __init__(self, place: bool = True):
        self.place, self.inside = place, threading.Event()

    @contextmanager
    def enter(self) -> Iterator[bool]:
        self.inside.set()
        try:
            yield self.place
        finally:
            self.inside.clear()


def test_a_keys_batch_waits_while_another_keys_is_made_then_is_made(svc, sim):
    x, v = app_caller(svc), app_caller(svc)
    assert svc.store.batches.start_making("x's, in another process", time.time(), at_once=1, lease=60)
    room, made, failed = Room(), [], []

    def make() -> None:
        try:
            made.append(create_batch(svc, v, batch_request(3), waiting_room=room.enter))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    maker = threading.Thread(target=make)
    maker.start()
    wait_until(room.inside.is_set, timeout=10, message="V's batch in the room")
    assert _batches(svc, v) == [] and not made  # nothing of V's made while X's is

    svc.store.batches.stop_making("x's, in another process")
    maker.join(timeout=10)
    assert not failed and len(made) == 1 and made[0].total == 3
    assert [b.id for b in _batches(svc, v)] == [made[0].id] and _batches(svc, x) == []
    assert not room.inside.is_set() and svc.redis.zcard(KEYS.batches_making) == 0  # its turn given back


def test_a_full_room_is_refused_at_once_and_nothing_is_made(svc, sim):
    v = app_caller(svc)
    assert svc.store.batches.start_making("x's", time.time(), at_once=1, lease=60)
    started = time.monotonic()

    with pytest.raises(BatchesBusy) as refused:
        create_batch(svc, v, batch_request(2), waiting_room=Room(place=False).enter)

    assert time.monotonic() - started < batching.MAKING_WAIT / 2  # not waited for
    assert refused.value.status == 503 and refused.value.retry_after
    assert "send it again in a few seconds" in refused.value.message and "nothing was created" in refused.value.message
    assert _batches(svc, v) == [] and svc.redis.zcard(KEYS.batches_making) == 1  # only X's turn


def test_no_turn_in_time_is_refused_and_a_full_room_never_takes_a_free_turn(svc, sim, monkeypatch):
    v = app_caller(svc)
    monkeypatch.setattr(batching, "MAKING_WAIT", 0.3)
    assert svc.store.batches.start_making("x's", time.time(), at_once=1, lease=60)
    with pytest.raises(BatchesBusy):
        create_batch(svc, v, batch_request(2), waiting_room=Room().enter)
    svc.store.batches.stop_making("x's")
    with pytest.raises(BatchesBusy):  # the room full: refused though a turn is free, and none taken
        create_batch(svc, v, batch_request(2), waiting_room=Room(place=False).enter)
    assert _batches(svc, v) == [] and svc.redis.zcard(KEYS.batches_making) == 0


def test_a_dead_processs_turn_lapses_and_a_refused_batch_gives_its_turn_back(svc, sim):
    v = app_caller(svc)
    # A process that died while making a batch: its turn ends with its lease.
    assert svc.store.batches.start_making("dead", time.time() - 61, at_once=1, lease=60)
    batch = create_batch(svc, v, batch_request(2), waiting_room=Room().enter)
    assert batch.total == 2 and svc.redis.zcard(KEYS.batches_making) == 0

    with pytest.raises(InvalidItems):
        create_batch(svc, v, BatchRequest(PRO, [BatchItem({"prompt": "x", "width": "wide"})]))
    assert svc.redis.zcard(KEYS.batches_making) == 0
    assert svc.store.batches.start_making("next", time.time(), at_once=1, lease=60)


def test_a_check_of_items_slower_than_the_lease_keeps_its_turn(svc, sim, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    check, checking = batching._check_items, threading.Event()

    def slow_check(model, items):  # 10,000 items on a loaded host, at the making's lower priority
        if len(items) == 4:
            checking.set()
            time.sleep(2.0)
        return check(model, items)

    monkeypatch.setattr(batching, "MAKING_LEASE", 0.6)  # said to go on every 0.2 s
    monkeypatch.setattr(batching, "MAKING_WAIT", 1.0)
    monkeypatch.setattr(batching, "_check_items", slow_check)
    made: list = []
    maker = threading.Thread(target=lambda: made.append(create_batch(svc, x, batch_request(4))))
    maker.start()
    try:
        assert checking.wait(timeout=10)
        with pytest.raises(BatchesBusy):  # X's turn outlives its lease while it checks: V's waits, then is refused
            create_batch(svc, v, batch_request(2), waiting_room=Room().enter)
    finally:
        maker.join(timeout=10)
    assert len(made) == 1 and made[0].total == 4 and _batches(svc, v) == []
    assert svc.redis.zcard(KEYS.batches_making) == 0


def test_a_batch_is_checked_made_and_canceled_at_a_lower_priority_and_the_requests_thread_keeps_its_own(
        svc, sim, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    seen: dict[str, set[int]] = {"check": set(), "trip": set(), "cancel": set()}

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def watched(name, work):
        def run(*args, **kwargs):
            seen[name].add(niceness())
            return work(*args, **kwargs)
        return run

    monkeypatch.setattr(batching, "_check_items", watched("check", batching._check_items))
    monkeypatch.setattr(svc.slots, "join_all", watched("trip", svc.slots.join_all))
    monkeypatch.setattr(batching, "_end_items", watched("cancel", batching._end_items))
    before = niceness()

    batch = create_batch(svc, x, batch_request(3))
    batching.cancel_batch(svc, x, batch.id)
    others = create_batch(svc, v, batch_request(2))  # V's, after X's: made as X's was, its own

    assert seen == {name: {min(19, before + batching.MAKING_NICENESS)} for name in seen}, seen
    assert niceness() == before  # the request's thread serves other requests after
    assert others.total == 2 and str(batching.get_batch(svc, x, batch.id).status) == "canceled"


def test_the_making_hands_the_interpreter_on_once_per_item_checked_and_once_per_item_made(svc, sim, monkeypatch):
    x = app_caller(svc)
    handed: list[str] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # sleep(0): the thread hands the interpreter lock on
        if seconds == 0:
            handed.append(threading.current_thread().name)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    items = batching.ITEMS_PER_TRIP + 3  # two trips
    assert create_batch(svc, x, batch_request(items)).total == items
    assert len(handed) == 2 * items and all(name.startswith("batch-making_") for name in handed)  # the making thread (`_aside`)
