"""What an owner holds queued is bounded (docs/operating.md; fluxhook/store/lua/queue_room.lua, Slots.join, hold_queue_room): a
job is made only in a step that finds its owner under its max_queued, counting its jobs in every pool's line and
aside and the room its batches being made hold; a batch holds room for all its items before its first is made, or
none. Always two owners: A at its limit, B beside it going on. On the unit tests' Redis (database 3)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.errors import QueueFull
from fluxhook.core.holds import QUEUE_ROOM_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import ADMIN_OWNER
from fluxhook.store.slots import QUEUE_FULL_RETRY, Slots, queue_full
from helpers import commands_during
from slot_helpers import _config, waiting_of

DB = 3  # the unit tests' slot database (tests/unit/conftest.py)
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"
KONTEXT = "flux-kontext-max"  # a pool of its own in _config()


class Clock:
    """The slots' clock, moved by hand: a batch's hold lapses without a test waiting for it."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def slots(connection, clock) -> Slots:
    return Slots(connection, _config(bfl_max_active=2, max_queued_per_key=1000), clock=clock)


@pytest.fixture()
def jobs(connection, slots) -> JobStore:
    return JobStore(connection, ttl=86400, pools=slots.pools)


def _job(key_id: str | None, model: str = "flux-2-pro", batch_id: str | None = None, index: int | None = None) -> Job:
    now = time.time()
    return Job(id=new_job_id(now), status=st.QUEUED, model=model, pool=pool_for(model, (("flux-kontext-max", 6),)),
               input={"prompt": "x"}, created_at=now, updated_at=now, key_id=key_id, batch_id=batch_id,
               batch_index=index)


def _make(jobs: JobStore, slots: Slots, key_id: str | None, limit: int | None, model: str = "flux-2-pro",
          send_here: bool = False) -> Job:
    """A new job of ``key_id`` made with its place in line, held to ``limit`` (None: read as a maker that did not
    read its key reads it); QueueFull when its owner has no room."""
    job = _job(key_id, model)
    slots.join(job, send_here=send_here, creation=jobs.creation(job), queue_limit=limit)
    return job


def _items(jobs: JobStore, key_id: str, batch_id: str, count: int) -> list:
    made = [_job(key_id, batch_id=batch_id, index=i) for i in range(count)]
    return [(job, jobs.creation(job)) for job in made]


def _nothing_left_of(connection, job: Job) -> None:
    """No trace of a refused job: no record, no index, no place in any line."""
    assert not connection.exists(KEYS.job(job.id))
    assert connection.zscore(KEYS.all_jobs, job.id) is None and connection.zscore(KEYS.queued_jobs, job.id) is None
    for line in (KEYS.line("default"), KEYS.line(KONTEXT), KEYS.aside):
        assert not [m for m in connection.zrange(line, 0, -1) if job.id.encode() in m]


def test_a_key_at_its_limit_makes_nothing_while_another_key_goes_on(jobs, slots, connection):
    made = [_make(jobs, slots, A, 3) for _ in range(3)]
    refused = _job(A)

    with pytest.raises(QueueFull) as caught:
        slots.join(refused, send_here=False, creation=jobs.creation(refused), queue_limit=3)

    _nothing_left_of(connection, refused)
    assert (caught.value.queued, caught.value.limit, caught.value.status, caught.value.code) == (3, 3, 429, "queue_full")
    assert caught.value.retry_after == QUEUE_FULL_RETRY
    assert len(waiting_of(slots, A)) == 3 and all(connection.exists(KEYS.job(job.id)) for job in made)
    # B's limit is its own: it goes on beside A's full queue, up to its own.
    assert [_make(jobs, slots, B, 3).id for _ in range(3)] == waiting_of(slots, B)
    with pytest.raises(QueueFull):
        _make(jobs, slots, B, 3)


def test_every_pool_s_line_and_the_jobs_aside_count_and_a_job_that_ends_gives_its_room_back(jobs, slots, connection):
    sent_first = _make(jobs, slots, A, 3, send_here=True)  # a slot free: it takes it, queued while sent
    assert slots.account_of(sent_first.id) == "default"
    assert slots.requeue(sent_first, wait=60)  # the budget held it back: aside, out of line
    assert connection.zcard(KEYS.aside) == 1
    in_kontext = _make(jobs, slots, A, 3, model=KONTEXT)
    _make(jobs, slots, A, 3)
    with pytest.raises(QueueFull) as caught:
        _make(jobs, slots, A, 3)
    assert caught.value.queued == 3  # one in each pool's line, one aside
    _make(jobs, slots, B, 3)  # B's room is untouched

    # One of A's jobs leaves the queue (it ends): room for one more, no more.
    assert jobs.transition(in_kontext.id, st.ABORTED, error={"code": "canceled", "message": "canceled"})
    _make(jobs, slots, A, 3)
    with pytest.raises(QueueFull):
        _make(jobs, slots, A, 3)


def test_a_job_far_from_its_limit_is_let_in_on_one_zcard_and_counts_no_line(jobs, slots, connection):
    _make(jobs, slots, A, 1000)  # the scripts loaded
    commands = [c["command"] for c in commands_during(connection, DB, lambda: _make(jobs, slots, A, 1000))]

    assert [c for c in commands if c.startswith("ZCARD")] == [f"ZCARD {KEYS.queued_jobs}"], commands
    assert not [c for c in commands if c.startswith("ZLEXCOUNT")], commands
    # Near its limit (every queued job is A's), the lines are counted: A's own, not B's.
    _make(jobs, slots, B, 1000)
    commands = [c["command"] for c in commands_during(connection, DB, lambda: _make(jobs, slots, A, 3))]
    assert len([c for c in commands if c.startswith("ZLEXCOUNT")]) == len(slots.pools) + 1, commands
    assert all(A in c for c in commands if c.startswith("ZLEXCOUNT")), commands
    with pytest.raises(QueueFull) as caught:
        _make(jobs, slots, A, 3)
    assert caught.value.queued == 3  # B's job counted for B alone


def test_a_maker_that_did_not_read_its_key_reads_its_max_queued_or_the_default(jobs, slots, connection):
    connection.hset(KEYS.app_key(A), mapping={"id": A, "max_queued": 2})
    assert slots.queue_limit_of(A) == 2 and slots.queue_limit_of(B) == 1000 and slots.queue_limit_of(None) == 1000
    _make(jobs, slots, A, None)
    _make(jobs, slots, A, None)
    with pytest.raises(QueueFull) as caught:
        _make(jobs, slots, A, None)
    assert caught.value.limit == 2
    _make(jobs, slots, B, None)


def test_a_batch_holds_room_for_all_its_items_before_its_first_is_made(jobs, slots, connection):
    _make(jobs, slots, A, 10)
    slots.hold_queue_room(A, "bat_a", 6, limit=10)
    # Its room is taken: A's single jobs find 3 left, B's queue is its own.
    for _ in range(3):
        _make(jobs, slots, A, 10)
    with pytest.raises(QueueFull) as caught:
        _make(jobs, slots, A, 10)
    assert (caught.value.queued, caught.value.limit) == (10, 10) and "6 of them for batches being made" in str(
        caught.value)
    _make(jobs, slots, B, 10)

    # Its items take the room held, whatever the count says meanwhile, and none is left held once the last is made.
    slots.join_all(_items(jobs, A, "bat_a", 4), queue_limit=10)
    assert int(connection.hget(KEYS.queue_room, A)) == 2
    slots.join_all(_items(jobs, A, "bat_a", 2), queue_limit=10)
    assert len(waiting_of(slots, A)) == 10
    assert connection.hgetall(KEYS.queue_room) == {} and connection.zcard(KEYS.queue_room_lapses) == 0


def test_a_batch_that_would_pass_the_limit_holds_nothing_and_names_its_room(jobs, slots, connection):
    for _ in range(7):
        _make(jobs, slots, A, 10)

    with pytest.raises(QueueFull) as caught:
        slots.hold_queue_room(A, "bat_a", 4, limit=10)

    assert connection.hgetall(KEYS.queue_room) == {} and connection.zcard(KEYS.queue_room_lapses) == 0
    message = str(caught.value)
    assert "4 items would pass the limit of 10" in message and "holds 7" in message and "room for 3" in message
    assert "send at most 3 items" in message and "max_queued" in message
    slots.hold_queue_room(A, "bat_a", 3, limit=10)  # as many as there is room for: held
    slots.hold_queue_room(B, "bat_b", 10, limit=10)  # B's batch beside it: its own room
    assert int(connection.hget(KEYS.queue_room, A)) == 3 and int(connection.hget(KEYS.queue_room, B)) == 10


def test_a_hold_its_making_stopped_using_lapses_and_its_items_are_then_checked_as_jobs(jobs, slots, connection,
                                                                                     clock):
    slots.hold_queue_room(A, "bat_a", 5, limit=5)
    slots.join_all(_items(jobs, A, "bat_a", 2), queue_limit=5)
    with pytest.raises(QueueFull):
        _make(jobs, slots, A, 5)

    clock.now += QUEUE_ROOM_LEASE + 1  # its making stopped: no item for the lease
    _make(jobs, slots, A, 5)  # the 3 items not made give their room back
    assert connection.hget(KEYS.queue_room, A) is None and connection.zcard(KEYS.queue_room_lapses) == 0
    # Its making, back, finds no room held: each item is checked as a job; those past the limit are not made.
    with pytest.raises(QueueFull):
        slots.join_all(_items(jobs, A, "bat_a", 3), queue_limit=5)
    assert len(waiting_of(slots, A)) == 5
    _make(jobs, slots, B, 5)


def test_a_hold_moves_its_lapse_on_while_its_items_are_made(jobs, slots, connection, clock):
    slots.hold_queue_room(A, "bat_a", 250, limit=1000)
    first = connection.zscore(KEYS.queue_room_lapses, f"{A}|bat_a")
    clock.now += QUEUE_ROOM_LEASE / 2
    slots.join_all(_items(jobs, A, "bat_a", 150), queue_limit=1000)  # its hold passed 200 left: moved on
    assert connection.zscore(KEYS.queue_room_lapses, f"{A}|bat_a") == pytest.approx(first + QUEUE_ROOM_LEASE / 2)


def test_exactly_the_limit_is_made_when_many_makers_race_past_it(jobs, slots, connection):
    limit, tries = 25, 120
    made_a, made_b, refused = [], [], []
    lock = threading.Lock()
    go = threading.Barrier(16)

    def make(n: int) -> None:
        if n < 16:
            go.wait()
        key = A if n % 3 else B  # B makes a third of them, under its own limit, at the same time
        try:
            job = _make(jobs, slots, key, limit if key == A else 1000)
        except QueueFull:
            with lock:
                refused.append(key)
            return
        with lock:
            (made_a if key == A else made_b).append(job.id)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(make, range(tries)))

    assert len(made_a) == limit and set(refused) == {A}
    assert len(made_b) == tries // 3 and len(refused) == tries - len(made_b) - limit
    assert sorted(waiting_of(slots, A)) == sorted(made_a) and sorted(waiting_of(slots, B)) == sorted(made_b)
    assert connection.zcard(KEYS.queued_jobs) == limit + len(made_b)


def test_a_batch_and_single_jobs_racing_for_the_last_room_never_pass_it_together(jobs, slots, connection):
    for _ in range(5):
        _make(jobs, slots, A, 20)
    outcomes: list = []
    go = threading.Barrier(9)

    def single() -> None:
        go.wait()
        try:
            outcomes.append(_make(jobs, slots, A, 20))
        except QueueFull:
            outcomes.append(None)

    def batch() -> None:
        go.wait()
        try:
            slots.hold_queue_room(A, "bat_a", 10, limit=20)
        except QueueFull:
            outcomes.append("batch refused")
            return
        slots.join_all(_items(jobs, A, "bat_a", 10), queue_limit=20)
        outcomes.append("batch made")

    with ThreadPoolExecutor(9) as pool:
        for future in [pool.submit(single) for _ in range(8)] + [pool.submit(batch)]:
            future.result()

    singles = [o for o in outcomes if isinstance(o, Job)]
    if "batch made" in outcomes:
        assert len(singles) == 5
    else:
        assert len(singles) == 8 and "batch refused" in outcomes
    assert len(waiting_of(slots, A)) <= 20
    assert len(waiting_of(slots, A)) == 5 + len(singles) + (10 if "batch made" in outcomes else 0)


def test_the_refusal_names_the_limit_the_count_and_what_to_do():
    one = str(queue_full(A, 1, [19_990, 10, 20_000]))
    assert "this app key holds 20,000 jobs and batch items queued for BFL (10 of them for batches being made)" in one
    assert "its limit of 20,000 (max_queued)" in one and "nothing was created" in one
    assert "once some of them have gone to BFL" in one and "ask an admin to raise the key's max_queued" in one
    admin = str(queue_full(ADMIN_OWNER, 1, [5, 0, 5]))
    assert "the admin tokens (one key, together) hold 5" in admin and "raise MAX_QUEUED_PER_KEY" in admin
    full = str(queue_full(A, 10, [20, 0, 20], batch=True))
    assert "room for 0" in full and "send at most" not in full
