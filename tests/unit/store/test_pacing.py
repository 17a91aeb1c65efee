"""Sends paced by storage on a real Redis (fluxhook/store/pacing.py, lua/store_pacing.lua): the Lua judges as the
rule in core/pacing.py does; its mark holds every new send back, each waiting job saying ``storage``; lifting it wakes
a dispatcher in the same step, and the jobs held go in their owners' turns, another key's single job first."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fluxhook.core import job as st
from fluxhook.core.pacing import ALL, BULK, NONE, Backlog, PacingRule, holds, level
from fluxhook.core.wait_reasons import WaitReason, in_line
from fluxhook.store.effects import STORED_TTL, CountStored, Tallies
from fluxhook.store.keys import KEYS
from fluxhook.store.pacing import HELD_GUARD, LOOK_EVERY, Pacer
from fluxhook.store.slots import Slots
from slot_helpers import _config, _queued, as_key, slot_freed

RULE = PacingRule(share=0.5, shortest_life=600, floor=4)
NOW = 1_800_000_032.0  # within a minute: 30 s into it


@pytest.fixture()
def pacer(connection) -> Pacer:
    return Pacer(connection)


def _backlog(connection, waiting: int) -> None:
    """``waiting`` results BFL finished and fluxhook has not stored: the ready jobs' index, as the jobs' moves keep it."""
    connection.delete(KEYS.status(st.READY))
    if waiting:
        connection.zadd(KEYS.status(st.READY), {f"job_{i:05d}": 0 for i in range(waiting)})


def _stored(connection, *ago: float) -> None:
    """Results stored that many seconds before ``NOW``, counted as a worker's tally writes them."""
    Tallies(connection).add([CountStored(NOW - seconds) for seconds in ago])


@pytest.mark.parametrize("waiting,stored_ago", [
    (0, ()), (3, ()), (4, ()), (40, [30.0] * 4), (200, [50.0 - i for i in range(40)]),
    (2_000, [59.0 - i for i in range(60)] * 4), (1_000, [59.0 - i for i in range(60)] * 4),
    (10, [2.0] * 30), (300, [2.0] * 30), (50, [90.0] * 100)])
def test_the_lua_judges_as_the_rule(connection, pacer, waiting, stored_ago):
    _backlog(connection, waiting)
    _stored(connection, *stored_ago)
    judged = pacer.read(NOW, RULE)
    # What it read: every result whose bucket began in the last minute (none older), over the span since the first.
    buckets = [int(NOW - a) // 5 * 5 for a in stored_ago]
    recent = [b for b in buckets if b >= NOW - 60]
    assert judged.backlog.waiting == waiting and judged.backlog.stored == len(recent)
    assert judged.backlog.span == (min(60, NOW - min(recent)) if recent else 0)
    assert judged.holds is holds(RULE, judged.backlog)
    assert judged.level == level(RULE, Backlog(waiting, len(recent), judged.backlog.span))
    # A reading writes nothing.
    assert not connection.exists(KEYS.store_held)


def test_stored_counts_are_kept_by_the_minute_in_buckets_for_a_few_minutes(connection):
    _stored(connection, 0.0, 1.0, 7.0)
    key = KEYS.stored_counts(int(NOW) // 60)
    # Five-second buckets, by their first second.
    assert {k.decode(): int(v) for k, v in connection.hgetall(key).items()} == {"1800000030": 2, "1800000025": 1}
    assert 0 < connection.ttl(key) <= STORED_TTL


def test_the_mark_holds_every_send_back_and_each_waiting_job_says_storage(connection, store, pacer):
    slots = Slots(connection, _config(bfl_max_active=3))
    _backlog(connection, 10)  # nothing stored of late: ten results would never be stored
    judged = pacer.judge(time.time(), RULE)
    assert judged.level == ALL and judged.until is None and pacer.judging
    assert 0 < connection.pttl(KEYS.store_held) <= HELD_GUARD * 1000
    job = _queued(store)
    # Room at BFL, and yet it waits, saying why.
    joined = slots.join(job)
    assert joined.account is None
    assert in_line(joined.line, time.time()).reason is WaitReason.STORAGE
    assert slots.dispatch().jobs == []
    [line] = slots.line_states([(job.pool, "admin", None)])
    assert line.storage == ALL and in_line(line, time.time()).reason is WaitReason.STORAGE


def test_a_mark_with_a_rate_says_about_when_sends_go_again(connection, pacer):
    _backlog(connection, 400)
    _stored(connection, *([59.0 - i for i in range(60)]))  # about one a second
    now = NOW
    judged = pacer.judge(now, RULE)
    assert judged.holds and judged.until is not None and now < judged.until < now + 400
    assert connection.get(KEYS.store_held).decode().startswith(repr(judged.until)[:10])


def test_the_lift_wakes_a_dispatcher_and_the_jobs_held_go(connection, store, pacer):
    slots = Slots(connection, _config(bfl_max_active=3))
    _backlog(connection, 10)
    pacer.judge(time.time(), RULE)
    jobs = [_queued(store) for _ in range(2)]
    for job in jobs:
        assert slots.acquire(job) is None
    connection.delete(KEYS.slot_freed)
    # Storage caught up: the next judgement lifts the mark, and pushes the dispatchers' wake-up in the same step.
    _backlog(connection, 2)
    assert not pacer.judge(time.time(), RULE).holds and not pacer.judging
    assert not connection.exists(KEYS.store_held)
    assert connection.llen(KEYS.slot_freed) == 1
    assert slot_freed(slots, 0.1)
    assert slots.dispatch().jobs == [job.id for job in jobs]
    # A judgement with nothing to lift wakes nobody.
    assert not pacer.judge(time.time(), RULE).holds and not connection.exists(KEYS.slot_freed)


def test_a_key_whose_batch_storage_holds_does_not_hold_another_keys_single_job_once_room_comes(connection, store,
                                                                                                 pacer):
    slots = Slots(connection, _config(bfl_max_active=3))
    a_jobs = [as_key(store, _queued(store), "key_a") for _ in range(8)]
    for job in a_jobs[:3]:
        assert slots.acquire(job)  # key A's first three are at BFL
    _backlog(connection, 10)
    pacer.judge(time.time(), RULE)
    for job in a_jobs[3:]:
        assert slots.acquire(job) is None
    b_job = as_key(store, _queued(store), "key_b")
    joined = slots.join(b_job)
    assert joined.account is None and in_line(joined.line, time.time()).reason is WaitReason.STORAGE
    # Two of A's tasks end; storage catches up: B's one job goes with the first room, not behind A's five waiting
    # (A's tasks took no time: its passes barely moved, so the two keys take one turn each).
    for job in a_jobs[:2]:
        store.transition(job.id, st.SUBMITTED, bfl_id=f"bfl-{job.id}")
        store.transition(job.id, st.READY, result_url="https://x/a.png")
    assert slots.dispatch().jobs == []
    _backlog(connection, 0)
    pacer.judge(time.time(), RULE)
    assert sorted(slots.dispatch().jobs) == sorted([b_job.id, a_jobs[3].id])


def test_a_sweep_reads_the_backlog_every_few_seconds_and_each_second_while_it_holds(connection, pacer):
    assert pacer.looks(NOW) and not pacer.looks(NOW + 1) and pacer.looks(NOW + LOOK_EVERY)
    _backlog(connection, 10)
    pacer.judge(NOW + LOOK_EVERY, RULE)
    assert pacer.looks(NOW + LOOK_EVERY + 1) and pacer.looks(NOW + LOOK_EVERY + 2)
    # Near the floor (the sweep's last look said so), it looks each second too.
    pacer.judging, pacer.near = False, True
    assert pacer.looks(NOW + 100) and pacer.looks(NOW + 101)


def test_pacing_off_sets_no_mark(connection, pacer):
    _backlog(connection, 10_000)
    assert pacer.judge(NOW, PacingRule(0, 600, 4)).level == NONE and not connection.exists(KEYS.store_held)


def test_past_the_bound_batch_items_wait_and_single_jobs_go_until_halfway_to_the_whole_life(connection, store, pacer):
    slots = Slots(connection, _config(bfl_max_active=3))
    _stored(connection, *([59.0 - i for i in range(60)]))  # one a second: the bound is 300, single jobs' 450
    _backlog(connection, 350)
    assert pacer.judge(NOW, RULE).level == BULK
    item = replace(_queued(store), batch_id="bat_1")
    store.connection.hset(KEYS.job(item.id), "batch_id", "bat_1")
    joined = slots.join(item)
    assert joined.account is None and in_line(joined.line, time.time(), bulk=True).reason is WaitReason.STORAGE
    single = _queued(store)
    joined = slots.join(single)
    assert joined.account is not None  # a single job goes: someone waits for it
    connection.delete(KEYS.slot_freed)
    _backlog(connection, 460)
    assert pacer.judge(NOW, RULE).level == ALL
    held = _queued(store)
    joined = slots.join(held)
    assert joined.account is None and in_line(joined.line, time.time()).reason is WaitReason.STORAGE
    # Back to batch items only: the single job held goes at once, woken in the same step; the item still waits.
    _backlog(connection, 350)
    assert pacer.judge(NOW, RULE).level == BULK and connection.llen(KEYS.slot_freed) == 1
    assert slots.dispatch().jobs == [held.id]
