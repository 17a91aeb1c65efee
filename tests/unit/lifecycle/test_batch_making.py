"""Batches made in turns between keys over every process (fluxhook/lifecycle/batching.py, ``MAKING_ITEMS_AT_ONCE``,
store/batch_turns.py): a key's batch waits in its process's room while another key's that leaves no room beside it is
made, is woken and made once that one's turn ends, before the rest of the other key's flood, and is refused 503 with
nothing made when the room has no place for it or no turn comes in time. In-process on a real Redis; the turns other
processes hold or wait for are taken through the store, as those processes would."""

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
from fluxhook.lifecycle.batching import BatchRequest, create_batch, list_batches
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.batch_turns import Rules
from unit.lifecycle.batch_helpers import PRO, app_caller, batch_request, spooled

DB = 7
AT = Rules(items_at_once=batching.MAKING_ITEMS_AT_ONCE, lease=60.0)
# A turn that leaves no room beside it: as many items as are made at once.
FULL = batching.MAKING_ITEMS_AT_ONCE


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


class Maker(threading.Thread):
    """``create_batch`` on a thread of its own: what it made, or what it raised, and when it ended."""

    def __init__(self, svc, caller: Caller, n: int, room: Room):
        super().__init__()
        self.svc, self.caller, self.n, self.room = svc, caller, n, room
        self.made: list = []
        self.failed: list[Exception] = []
        self.ended_at = 0.0

    def run(self) -> None:
        try:
            self.made.append(create_batch(self.svc, self.caller, batch_request(self.n), waiting_room=self.room.enter))
        except Exception as exc:  # noqa: BLE001 - reported by the test's assertions
            self.failed.append(exc)
        self.ended_at = time.monotonic()


def test_a_keys_batch_is_woken_and_made_as_soon_as_another_keys_turn_ends(svc, sim, monkeypatch):
    # Looks at the line far apart: only its wake-up can end V's wait in time.
    monkeypatch.setattr(batching, "MAKING_LOOK_EVERY", 4.0)
    x, v = app_caller(svc), app_caller(svc)
    turns = svc.store.batches.turns
    xs = turns.join(x.key_id, FULL, time.time(), AT)  # X's batch, made by another process
    assert xs.holds
    maker = Maker(svc, v, 3, Room())
    maker.start()
    wait_until(lambda: len(turns.waiters()) == 1, timeout=10, message="V's batch waiting for its turn")
    assert maker.room.inside.is_set() and _batches(svc, v) == [] and not maker.made  # nothing of V's made meanwhile

    ended = time.monotonic()
    turns.end(xs, time.time(), AT)
    maker.join(timeout=10)
    assert not maker.failed and len(maker.made) == 1 and maker.made[0].total == 3
    assert maker.ended_at - ended < 2.0  # woken, not found at its next look 4 s on
    assert [b.id for b in _batches(svc, v)] == [maker.made[0].id] and _batches(svc, x) == []
    assert not maker.room.inside.is_set() and turns.holders() == [] and turns.waiters() == []  # its turn given back


def test_another_keys_batch_goes_before_the_rest_of_a_keys_flood(svc, sim):
    x, v = app_caller(svc), app_caller(svc)
    turns = svc.store.batches.turns
    xs = turns.join(x.key_id, FULL, time.time(), AT)  # X's flood: one being made, two waiting, other processes
    flood = [turns.join(x.key_id, 10_000, time.time(), AT) for _ in range(2)]
    maker = Maker(svc, v, 3, Room())
    maker.start()
    wait_until(lambda: len(turns.waiters()) == 3, timeout=10, message="V's batch waiting behind X's flood")

    turns.end(xs, time.time(), AT)
    maker.join(timeout=10)
    assert not maker.failed and maker.made[0].total == 3
    # V's went before X's two waiting (X's next was made beside it, its last still waits behind it).
    assert turns.waiters() == [flood[1].member] and turns.holders() == [flood[0].member]
    turns.end(flood[0], time.time(), AT)
    turns.end(flood[1], time.time(), AT)
    assert turns.holders() == [] and turns.waiters() == []


def test_a_room_without_a_place_is_refused_at_once_and_nothing_is_made_or_left_waiting(svc, sim):
    x, v = app_caller(svc), app_caller(svc)
    turns = svc.store.batches.turns
    xs = turns.join(x.key_id, FULL, time.time(), AT)
    started = time.monotonic()

    with pytest.raises(BatchesBusy) as refused:
        create_batch(svc, v, batch_request(2), waiting_room=Room(place=False).enter)

    assert time.monotonic() - started < batching.MAKING_WAIT / 2  # not waited for
    assert refused.value.status == 503 and refused.value.retry_after
    assert "send it again in a few seconds" in refused.value.message and "nothing was created" in refused.value.message
    assert _batches(svc, v) == [] and turns.holders() == [xs.member] and turns.waiters() == []  # only X's turn


def test_no_turn_in_time_is_refused_and_gives_its_place_up(svc, sim, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    monkeypatch.setattr(batching, "MAKING_WAIT", 0.3)
    turns = svc.store.batches.turns
    xs = turns.join(x.key_id, FULL, time.time(), AT)
    with pytest.raises(BatchesBusy):
        create_batch(svc, v, batch_request(2), waiting_room=Room().enter)
    assert _batches(svc, v) == [] and turns.waiters() == [] and turns.holders() == [xs.member]
    turns.end(xs, time.time(), AT)
    assert create_batch(svc, v, batch_request(2), waiting_room=Room().enter).total == 2  # a free turn: made


def test_a_dead_processs_turn_lapses_and_a_refused_batch_gives_its_turn_back(svc, sim, monkeypatch):
    monkeypatch.setattr(batching, "MAKING_LOOK_EVERY", 0.5)
    x, v = app_caller(svc), app_caller(svc)
    turns = svc.store.batches.turns
    # A process that died while making X's batch: its turn ends with its lease, a second from now.
    lease = batching.BATCH_MAKING_LEASE
    turns.join(x.key_id, FULL, time.time() - lease + 1, Rules(items_at_once=FULL, lease=lease))
    started = time.monotonic()
    batch = create_batch(svc, v, batch_request(2), waiting_room=Room().enter)
    assert batch.total == 2 and 0.5 < time.monotonic() - started < 5 and turns.holders() == []

    with pytest.raises(InvalidItems):
        create_batch(svc, v, BatchRequest(PRO, spooled({"prompt": "x", "width": "wide"})))
    assert turns.holders() == [] and turns.waiters() == []
    assert turns.join(x.key_id, 1, time.time(), AT).holds


def test_a_check_of_items_slower_than_the_lease_keeps_its_turn(svc, sim, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    turns = svc.store.batches.turns
    check, checking = batching._check_items, threading.Event()

    def slow_check(model, items, **options):  # 10,000 items on a loaded host, at the making's lower priority
        if items.count == 4:
            checking.set()
            time.sleep(2.0)
        return check(model, items, **options)

    monkeypatch.setattr(batching, "BATCH_MAKING_LEASE", 0.6)  # said to go on every 0.2 s
    monkeypatch.setattr(batching, "_check_items", slow_check)
    made: list = []
    maker = threading.Thread(target=lambda: made.append(create_batch(svc, x, batch_request(4))))
    maker.start()
    try:
        assert checking.wait(timeout=10)
        time.sleep(1.0)  # past its lease
        (held,) = turns.holders()
        assert held.startswith(f"{x.key_id}:")  # X's turn outlives its lease while it checks
        # and another key's batch that would not fit beside it waits, however long X's check takes.
        vs = turns.join(v.key_id, FULL, time.time(), Rules(items_at_once=FULL, lease=0.6))
        assert not vs.holds
        turns.leave(vs, time.time(), AT)
    finally:
        maker.join(timeout=10)
    assert len(made) == 1 and made[0].total == 4 and _batches(svc, v) == []
    assert turns.holders() == [] and turns.waiters() == []


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


def test_the_making_hands_the_interpreter_on_after_each_stretch_of_its_work_from_its_own_thread(svc, sim, monkeypatch):
    x = app_caller(svc)
    handed: list[str] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # sleep(0): the thread hands the interpreter lock on
        if seconds == 0:
            handed.append(threading.current_thread().name)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(batching, "LET_REQUESTS_RUN_EVERY", 0.0)  # every item's check and making is a stretch
    items = batching.ITEMS_PER_TRIP + 3  # two trips
    assert create_batch(svc, x, batch_request(items)).total == items
    assert len(handed) == 2 * items and all(name.startswith("batch-making_") for name in handed)  # the making thread (`_aside`)
    handed.clear()
    monkeypatch.setattr(batching, "LET_REQUESTS_RUN_EVERY", 3600.0)  # one stretch: not handed on at all
    assert create_batch(svc, x, batch_request(items)).total == items
    assert handed == []
