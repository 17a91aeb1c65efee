"""The fair share of BFL's slots between owners (app keys, and the admin tokens as one) on a real Redis:
random runs over several clients against the plain-Python model (``fair_model``), the fairness bound
behind a backlog, weights, each owner's max_active, the cost of a dispatch, and the lines of an older
release taken over."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from hypothesis.configuration import set_hypothesis_home_dir

from fair_model import FairModel
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, KONTEXT_MAX_POOL, pool_for, pool_limit
from fluxhook.core.holds import SLOT_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.migrations import migrate
from fluxhook.store.owners import ADMIN_OWNER, CLOCK, estimate_field, owner_of
from fluxhook.store.slots import Slots
from helpers import commands_during

# The slot tests' config (their database and store are fixtures of tests/unit/conftest.py).
from slot_helpers import _config, as_key, held_by, in_flight, slot_freed, waiting_of

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fluxhook-hypothesis")

KONTEXT = "flux-kontext-max"
POOLS = (DEFAULT_POOL, KONTEXT_MAX_POOL)
OWNERS = (ADMIN_OWNER, "key_a", "key_b", "key_c")
FAIL = {"code": "bfl_error", "message": "x"}
CLIENTS = 3
_BASE = time.time()
_count = iter(range(10**9))


def _client(connection) -> redis.Redis:
    """A client of its own, on the same database: another process, as far as Redis can tell."""
    return redis.Redis(**{k: connection.connection_pool.connection_kwargs[k] for k in ("host", "port", "db")})


def _queued(store: JobStore, model: str = "flux-2-pro") -> Job:
    """A queued job, created strictly after every earlier one (1 ms apart, no sleeping)."""
    created = _BASE + next(_count) * 0.001
    job = Job(id=new_job_id(created), status=st.QUEUED, model=model, pool=pool_for(model), input={"prompt": "x"},
              created_at=created, updated_at=created)
    store.create(job)
    return job


def _key_id(owner: str) -> str | None:
    return None if owner == ADMIN_OWNER else owner


def _text(values) -> list[str]:
    return [v.decode() for v in values]


def _assert_same(model: FairModel, connection) -> None:
    """Redis holds exactly the model's state: holders (with their owners and charges), lines, counts, passes, clock."""
    pipe = connection.pipeline(transaction=True)
    for pool in POOLS:
        pipe.zrange(KEYS.slots(pool), 0, -1).zrange(KEYS.line(pool), 0, -1)
    pipe.hgetall(KEYS.fair_held).hgetall(KEYS.fair_passes).hgetall(KEYS.slot_holders).hgetall(KEYS.slot_counts)
    *per_pool, held, passes, holders, counts = pipe.execute()
    for n, pool in enumerate(POOLS):
        assert set(_text(per_pool[2 * n])) == set(model.held[pool]), pool
        assert _text(per_pool[2 * n + 1]) == model.line_members(pool), pool
    # Each pool's count of slots held, what the scripts read its room from, is its set's (or, dropped, made from it).
    assert {k.decode(): int(v) for k, v in counts.items()}.items() <= \
        {KEYS.slots(pool): len(model.held[pool]) for pool in POOLS}.items()
    assert {k.decode(): int(v) for k, v in held.items()} == model.held_counts()
    clock = passes.pop(CLOCK.encode(), 0)  # the clock lives beside the passes (owners.CLOCK), and so do the estimates
    estimates = {k: v for k, v in passes.items() if k.startswith(b"~")}
    assert {k.decode(): float(v) for k, v in passes.items() if k not in estimates} == model.turns.passes
    assert float(clock) == model.turns.clock
    # Each holder's one entry: its account, the owner its slot counts for, the charge of its turn (then when it took the
    # slot and the owner's weight).
    entries = {k.decode(): v.decode().split("|") for k, v in holders.items()}
    assert {job: (account, owner, float(charge)) for job, (account, owner, charge, *_) in entries.items()} == \
        {job: ("default", owner, model.charges[job]) for pool in POOLS for job, owner in model.held[pool].items()}
    estimated = {estimate_field(KEYS.slots(pool), owner): v for (pool, owner), v in model.estimates.items()}
    assert {k.decode(): float(v) for k, v in estimates.items()} == estimated
    assert model.in_flight() <= model.total
    assert all(len(model.held[p]) <= model.limits[p] for p in POOLS)


_pick = hs.integers(0, 10**6)
_ARRIVE = hs.tuples(hs.just("arrive"), hs.sampled_from(OWNERS), hs.sampled_from(("flux-2-pro", KONTEXT)),
                    hs.integers(0, CLIENTS - 1))
_DISPATCH = hs.tuples(hs.just("dispatch"), hs.integers(0, CLIENTS - 1), hs.integers(1, 4))
_END = hs.tuples(hs.just("end"), _pick, hs.sampled_from(("failed", "ready", "delete")))
# Arrivals, dispatches and ends most often, so that lines form and turns go round.
STEPS = hs.one_of(
    _ARRIVE, _ARRIVE, _ARRIVE, _DISPATCH, _DISPATCH, _END, _END,
    hs.tuples(hs.just("submit"), _pick),
    hs.tuples(hs.just("leave"), _pick, hs.sampled_from(("failed", "delete", "moved on"))),
    hs.tuples(hs.just("requeue"), _pick, hs.sampled_from(("plain", "pause", "wait")), hs.integers(0, CLIENTS - 1)),
    hs.tuples(hs.just("back"), _pick),
    hs.tuples(hs.just("unpause"), hs.sampled_from(POOLS)),
    hs.tuples(hs.just("weight"), hs.sampled_from(OWNERS), hs.sampled_from((None, 1, 2, 3, 0.5, 0))),
    hs.tuples(hs.just("cap"), hs.sampled_from(OWNERS), hs.sampled_from((None, 0, 1, 2))),
    # Time passing: tasks of mixed lengths, from instants to minutes (a FLUX 3 video).
    hs.tuples(hs.just("tick"), hs.sampled_from((0.0, 0.05, 1.0, 2.5, 30.0, 240.0))),
    hs.tuples(hs.just("tick"), hs.floats(0, 300, allow_nan=False)),
)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(total=hs.integers(1, 5), kontext=hs.integers(1, 3), steps=hs.lists(STEPS, min_size=10, max_size=80))
def test_random_runs_over_several_clients_match_the_model(connection, total, kontext, steps):
    connection.flushdb()
    config = _config(bfl_max_active=total, bfl_max_active_kontext_max=kontext)
    conns = [_client(connection) for _ in range(CLIENTS)]
    now = [1_800_000_000.0]  # the clock every client and the model read: it moves only with a "tick"
    clock = lambda: now[0]  # noqa: E731
    slots, stores = [Slots(c, config, clock=clock) for c in conns], [JobStore(c, clock=clock) for c in conns]
    model = FairModel(total, {p: pool_limit(config, p) for p in POOLS})
    jobs: dict[str, Job] = {}
    status: dict[str, str] = {}

    def chosen(n: int, ids) -> Job | None:
        ids = sorted(ids)
        return jobs[ids[n % len(ids)]] if ids else None

    holders = lambda: [i for p in POOLS for i in model.held[p]]  # noqa: E731
    waiters = lambda: [i for p in POOLS for line in model.lines[p].values() for i in line]  # noqa: E731
    for n, step in enumerate(steps):
        kind, store_ = step[0], stores[n % CLIENTS]
        if kind == "arrive":
            _, owner, model_name, client = step
            job = _queued(store_, model_name)
            jobs[job.id], status[job.id] = job, st.QUEUED
            took = slots[client].acquire(as_key(store_, job, _key_id(owner)))
            assert bool(took) is model.acquire(job.id, job.pool, owner, now[0])
        elif kind == "dispatch":
            assert slots[step[1]].dispatch(step[2]).jobs == model.dispatch(now[0], step[2])
        elif kind == "tick":
            now[0] += step[1]
        elif kind == "submit" and (job := chosen(step[1], [i for i in holders() if status[i] == st.QUEUED])):
            assert store_.transition(job.id, st.SUBMITTED, bfl_id=f"b-{job.id}")  # still holds its slot
            status[job.id] = st.SUBMITTED
        elif kind == "end" and (job := chosen(step[1], holders())):
            if step[2] == "ready":
                if status[job.id] == st.QUEUED:
                    assert store_.transition(job.id, st.SUBMITTED, bfl_id=f"b-{job.id}")
                assert store_.transition(job.id, st.READY, result_url="https://x/r.png")
                model.free(job.id, now[0], ran=True)
            elif step[2] == "delete":
                assert store_.delete(job.id) is not None
                model.delete(job.id)
            else:
                assert store_.transition(job.id, st.FAILED, error=FAIL)
                model.end(job.id, now[0], ran=status[job.id] == st.SUBMITTED)
            status[job.id] = "gone"
        elif kind == "leave" and (job := chosen(step[1], waiters())):
            if step[2] == "moved on":  # submitted by another way while in line: it leaves its line
                assert store_.transition(job.id, st.SUBMITTED, bfl_id=f"b-{job.id}")
                model.leave_line(job.id)
            else:
                assert store_.delete(job.id) is not None if step[2] == "delete" else \
                    store_.transition(job.id, st.FAILED, error=FAIL)
                model.delete(job.id) if step[2] == "delete" else model.end(job.id, now[0], ran=False)
            status[job.id] = "gone"
        elif kind == "requeue" and (job := chosen(step[1], holders())):
            how, client = step[2], step[3]
            requeued = slots[client].requeue(job, pause=30 if how == "pause" else 0, wait=60 if how == "wait" else 0)
            assert requeued is (status[job.id] == st.QUEUED)
            if requeued:
                model.requeue(job.id, job.pool, pause=how == "pause", wait=how == "wait")
        elif kind == "back":  # the sweep puts a job that waited out of line back in line
            away = [i for i, s in status.items() if s == st.QUEUED and i not in holders() and i not in waiters()]
            if job := chosen(step[1], away):
                assert slots[n % CLIENTS].requeue(job)
                model.requeue(job.id, job.pool)
        elif kind == "unpause":
            connection.delete(KEYS.paused(step[1]))
            model.paused.discard(step[1])
        elif kind in ("weight", "cap"):
            _, owner, value = step
            key, kept = (KEYS.share_weights, model.weights) if kind == "weight" else (KEYS.share_max_active, model.caps)
            if value is None:
                connection.hdel(key, owner)
                kept.pop(owner, None)
            else:
                connection.hset(key, owner, value)
                kept[owner] = value
        _assert_same(model, connection)
    for c in conns:
        c.close()


def _end(store: JobStore, job_id: str) -> None:
    assert store.transition(job_id, st.FAILED, error=FAIL)


def test_a_backlog_never_makes_another_keys_job_wait_past_the_next_free_slot(store, connection):
    slots = Slots(connection, _config(bfl_max_active=4))
    backlog = [_queued(store) for _ in range(200)]
    assert [bool(slots.acquire(as_key(store, j, "key_a"))) for j in backlog[:5]] == [True] * 4 + [False]
    for job in backlog[5:]:
        assert not slots.acquire(as_key(store, job, "key_a"))
    running = [j.id for j in backlog[:4]]
    for _ in range(10):  # key B sends one job while A's backlog waits; then a slot frees
        b = _queued(store)
        assert not slots.acquire(as_key(store, b, "key_b"))  # all 4 slots are taken
        _end(store, running.pop(0))
        assert slots.dispatch().jobs == [b.id]  # the very next free slot, ahead of 190-odd of A's
        running.append(b.id)
        for _ in range(3):  # slots free in between: A's jobs, in their order
            _end(store, running.pop(0))
            given = slots.dispatch().jobs
            assert len(given) == 1 and given[0] in {j.id for j in backlog}
            running.append(given[0])
    assert waiting_of(slots, "key_a") == [j.id for j in backlog[34:]]  # A's own order kept: 4 + 30 went out


def test_a_new_job_takes_a_slot_freed_but_not_yet_handed_out_when_its_turn_comes_first(store, connection):
    slots = Slots(connection, _config(bfl_max_active=2))
    a = [_queued(store) for _ in range(5)]
    assert [bool(slots.acquire(as_key(store, j, "key_a"))) for j in a] == [True, True, False, False, False]
    _end(store, a[0].id)
    b = _queued(store)
    assert slots.acquire(as_key(store, b, "key_b"))  # B's turn starts before A's next one: it goes now
    late_a = _queued(store)
    _end(store, a[1].id)
    assert not slots.acquire(as_key(store, late_a, "key_a"))  # behind A's own earlier jobs
    assert slots.dispatch().jobs == [a[2].id]


def test_weights_share_the_slots_in_proportion(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    connection.hset(KEYS.share_weights, mapping={"key_a": 3, "key_b": 1})
    first = _queued(store)
    assert slots.acquire(as_key(store, first, "key_c"))  # holds the one slot while both backlogs queue
    owner_of = {}
    for owner in ("key_a", "key_b"):
        for _ in range(60):
            job = _queued(store)
            owner_of[job.id] = owner
            assert not slots.acquire(as_key(store, job, owner))
    turns, holder = [], first.id
    for _ in range(80):
        _end(store, holder)
        [holder] = slots.dispatch().jobs
        turns.append(owner_of[holder])
    for n in range(4, 81, 4):  # every four turns: three of A's, one of B's
        assert turns[:n].count("key_a") == 3 * n // 4, turns[:n]


def test_an_owner_at_its_max_active_is_passed_over_and_holds_nobody_up(store, connection):
    slots = Slots(connection, _config(bfl_max_active=4))
    slots.set_share("key_a", 1, 2)
    a = [_queued(store) for _ in range(4)]
    assert [bool(slots.acquire(as_key(store, j, "key_a"))) for j in a] == [True, True, False, False]
    assert held_by(slots, "key_a") == 2
    b = [_queued(store) for _ in range(3)]
    # A at its cap: B takes the free ones
    assert [bool(slots.acquire(as_key(store, j, "key_b"))) for j in b] == [True, True, False]
    assert slots.dispatch().jobs == []  # all four slots held
    _end(store, b[0].id)
    assert slots.dispatch().jobs == [b[2].id]  # A still at its cap: B's job, though A's waited longer
    _end(store, a[0].id)
    assert slots.dispatch().jobs == [a[2].id]  # A under its cap again
    assert held_by(slots, "key_a") == 2 and held_by(slots, "key_b") == 2
    slots.drop_share("key_a")
    assert connection.hlen(KEYS.share_weights) == connection.hlen(KEYS.share_max_active) == 0
    assert store.delete(b[1].id) is not None
    assert slots.dispatch().jobs == [a[3].id] and held_by(slots, "key_a") == 3 and held_by(slots, "key_b") == 1


def test_within_one_key_each_model_keeps_its_fifo_order_and_its_own_limit(store, connection):
    slots = Slots(connection, _config(bfl_max_active=3, bfl_max_active_kontext_max=1))
    k1, k2, d1, d2, d3 = (_queued(store, m) for m in (KONTEXT, KONTEXT, "flux-2-pro", "flux-2-pro", "flux-2-pro"))
    assert [bool(slots.acquire(as_key(store, j, "key_a"))) for j in (k1, k2, d1, d2, d3)] == [True, False, True, True, False]
    other = _queued(store)
    assert not slots.acquire(as_key(store, other, "key_b"))
    _end(store, d1.id)
    assert slots.dispatch().jobs == [other.id]  # B's turn; kontext-max is at its limit, A's k2 cannot use it
    _end(store, k1.id)
    _end(store, d2.id)
    assert slots.dispatch().jobs == [k2.id, d3.id]  # A's jobs in their order once their pools have room
    assert in_flight(slots, KONTEXT_MAX_POOL) == 1 and in_flight(slots, DEFAULT_POOL) == 2


def test_a_dispatch_costs_the_same_behind_ten_jobs_or_a_thousand(store, connection, redis_server):
    db = connection.connection_pool.connection_kwargs["db"]

    def commands_for(backlog: int) -> int:
        connection.flushdb()
        slots = Slots(connection, _config(bfl_max_active=2))
        for owner in ("key_a", "key_b", "key_c"):
            for _ in range(backlog):
                slots.acquire(as_key(store, _queued(store), owner))
        for holder in connection.zrange(KEYS.slots(DEFAULT_POOL), 0, -1):
            _end(store, holder.decode())
        commands = commands_during(connection, db, lambda: slots.dispatch().jobs)
        return len([c for c in commands if c["client_type"] == "lua"])  # the script's own, not its loading

    small, large = commands_for(10), commands_for(1000)
    assert 0 < small == large


def test_jobs_in_a_line_of_the_release_before_fair_share_are_taken_over_as_the_admins(store, connection):
    config = _config(bfl_max_active=1)
    slots = Slots(connection, config)
    old = [_queued(store) for _ in range(3)]
    for job in old:
        connection.zadd(KEYS.legacy_line(DEFAULT_POOL), {job.id: job.created_at})
    _end(store, old[1].id)  # it ended while the old line held it
    assert migrate(connection, config).lines == 2 and migrate(connection, config).lines == 0
    assert connection.exists(KEYS.legacy_line(DEFAULT_POOL)) == 0
    assert waiting_of(slots, None) == [old[0].id, old[2].id]
    assert slots.dispatch().jobs == [old[0].id] and held_by(slots, None) == 1
    _end(store, old[0].id)
    assert slots.dispatch().jobs == [old[2].id]


def test_concurrent_clients_never_exceed_any_limit(store, connection):
    total, kontext, caps = 5, 2, {"key_a": 2, "key_b": 3}
    config = _config(bfl_max_active=total, bfl_max_active_kontext_max=kontext)
    connection.hset(KEYS.share_max_active, mapping=caps)
    owners = ("key_a", "key_b", "key_c", ADMIN_OWNER)
    jobs = [(_queued(store, KONTEXT if n % 3 == 0 else "flux-2-pro"), owners[n % 4]) for n in range(240)]
    granted, released, violations = [], [], []
    lock, done = threading.Lock(), threading.Event()

    def client(batch):
        own = _client(connection)
        slots, own_store, mine = Slots(own, config), JobStore(own), []
        for n, (job, owner) in enumerate(batch):
            if n % 3 == 2 and mine:
                own_store.transition(mine[0], st.FAILED, error=FAIL)
                with lock:
                    released.append(mine.pop(0))
            # No look for lapsed slots (none lapse here): the counts of slots held are then only what takes and
            # give-backs keep, never counted anew.
            got = ([job.id] if slots.acquire(as_key(own_store, job, _key_id(owner))) else []) + \
                slots.dispatch(free_lapsed=False).jobs
            mine += got
            with lock:
                granted.extend(got)

    def watcher():
        own = _client(connection)
        while not done.is_set():
            pipe = own.pipeline(transaction=True)
            pipe.zcard(KEYS.slots(DEFAULT_POOL)).zcard(KEYS.slots(KONTEXT_MAX_POOL)).hgetall(KEYS.fair_held)
            default, kontext_held, held, counts = pipe.hgetall(KEYS.slot_counts).execute()
            counted = {KEYS.slots(DEFAULT_POOL).encode(): default, KEYS.slots(KONTEXT_MAX_POOL).encode(): kontext_held}
            if default + kontext_held > total or kontext_held > kontext or \
                    any(int(held.get(k.encode(), 0)) > cap for k, cap in caps.items()) or \
                    any(int(n) != counted[k] for k, n in counts.items()):
                violations.append((default, kontext_held, held, counts))

    watch = threading.Thread(target=watcher)
    threads = [threading.Thread(target=client, args=(jobs[i::8],)) for i in range(8)]
    for t in [watch, *threads]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watch.join()
    assert violations == []
    assert len(granted) == len(set(granted)) and len(released) > 20
    held = {m.decode() for p in POOLS for m in connection.zrange(KEYS.slots(p), 0, -1)}
    assert held == set(granted) - set(released)
    counts = {k.decode(): int(v) for k, v in connection.hgetall(KEYS.fair_held).items()}
    owner_of = {job.id: owner for job, owner in jobs}
    assert counts == {o: n for o in owners if (n := sum(owner_of[i] == o for i in held))}
    assert {k.decode(): int(v) for k, v in connection.hgetall(KEYS.slot_counts).items()} == \
        {KEYS.slots(p): connection.zcard(KEYS.slots(p)) for p in POOLS}
    assert Slots(connection, config).dispatch().jobs == []  # no idle slot while a job that could use it waits


def test_an_owner_back_from_idle_has_saved_up_no_credit(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    a = [_queued(store) for _ in range(30)]
    assert [bool(slots.acquire(as_key(store, j, "key_a"))) for j in a[:2]] == [True, False]
    for n in range(1, 11):  # A alone: ten turns
        _end(store, a[n - 1].id)
        assert slots.dispatch().jobs == [a[n].id]
        assert slots.acquire(as_key(store, a[n + 1], "key_a")) is None
    assert not any(slots.acquire(as_key(store, j, "key_a")) for j in a[12:20])
    b = [_queued(store) for _ in range(6)]
    assert not any(slots.acquire(as_key(store, j, "key_b")) for j in b)
    turns, holder = [], a[10].id
    for _ in range(8):
        _end(store, holder)
        [holder] = slots.dispatch().jobs
        turns.append("b" if holder in {j.id for j in b} else "a")
    assert turns == ["b", "a"] * 4  # in turn from the start: not B's six first for A's ten before them


def test_a_status_change_that_frees_a_slot_wakes_one_dispatcher(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    first, second = _queued(store), _queued(store)
    assert slots.acquire(first) and not slots.acquire(second)
    assert store.transition(first.id, st.SUBMITTED, bfl_id=f"b-{first.id}")  # BFL has it: the slot stays held
    assert not slot_freed(slots, 0.05)
    assert store.transition(first.id, st.READY, result_url="https://x/r.png")
    assert store.transition(second.id, st.FAILED, error=FAIL)  # frees nothing: it held no slot
    assert connection.llen(KEYS.slot_freed) == 1
    assert slot_freed(slots, 0.05) and not slot_freed(slots, 0.05)


def test_a_slot_freed_with_no_job_in_any_line_wakes_no_dispatcher_and_the_next_job_takes_it(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    job = _queued(store)
    assert slots.acquire(job)
    assert store.transition(job.id, st.FAILED, error=FAIL)
    assert not slots.holds(job) and not slot_freed(slots, 0.05)  # a dispatch would find nothing to give
    later = _queued(store)
    assert slots.acquire(later) and slots.holds(later)  # the slot is free as it joins


def test_a_keys_share_changed_wakes_one_dispatcher_and_its_raised_cap_lets_its_waiting_job_go(store, connection):
    slots = Slots(connection, _config(bfl_max_active=4))
    slots.set_share("key_a", None, 1)
    assert slot_freed(slots, 0.05)  # the share written wakes a dispatcher
    first, second = (as_key(store, _queued(store), "key_a") for _ in range(2))
    assert slots.acquire(first) and not slots.acquire(second)  # key A at its max_active: no wake-up pushed
    assert not slot_freed(slots, 0.05)
    held_back = slots.dispatch()
    assert held_back.jobs == [] and held_back.waiting and not held_back.on_timer  # only a slot freeing ends it
    slots.set_share("key_a", None, 2)
    assert slot_freed(slots, 0.05) and not slot_freed(slots, 0.05)  # one wake-up for the change
    assert slots.dispatch().jobs == [second.id]


def test_a_job_that_joins_a_line_without_a_slot_takes_none_and_wakes_a_sender(store, connection):
    slots = Slots(connection, _config(bfl_max_active=2))
    job = _queued(store)
    assert not slots.acquire(as_key(store, job, "key_a"), send_here=False)  # room, but its caller will not send it
    assert not slots.holds(job) and slots.waiting(DEFAULT_POOL) == 1
    assert slot_freed(slots, 0.05)  # a sender is woken to take it
    assert slots.dispatch(limit=1).jobs == [job.id] and slots.holds(job)


def test_a_job_that_joins_a_full_pool_wakes_no_sender(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    holder = _queued(store)
    assert slots.acquire(holder)
    connection.delete(KEYS.slot_freed)
    waiting = _queued(store)
    assert not slots.acquire(as_key(store, waiting, "key_a"), send_here=False)
    assert connection.llen(KEYS.slot_freed) == 0  # a dispatch now would give nothing: the freed slot wakes one
    assert slots.waiting(DEFAULT_POOL) == 1
    assert store.transition(holder.id, st.FAILED, error=FAIL)
    assert slot_freed(slots, 0.05) and slots.dispatch(limit=1).jobs == [waiting.id]


def test_owner_ids_are_words_that_cannot_break_a_lines_ranges():
    assert owner_of(None) == ADMIN_OWNER and owner_of("key_01ABC-x") == "key_01ABC-x"
    for bad in ("a:b", "a;b", "a b", "k" * 65):
        with pytest.raises(ValueError):
            owner_of(bad)
    assert owner_of("") == ADMIN_OWNER  # no key id: an admin token's job


def test_a_slot_held_past_its_lease_is_freed_for_its_owners_count_too(store, connection):
    slots = Slots(connection, _config(bfl_max_active=2))
    slots.set_share("key_a", None, 1)
    stuck, waiting = _queued(store), _queued(store)
    # Key A at its max_active:
    assert slots.acquire(as_key(store, stuck, "key_a")) and not slots.acquire(as_key(store, waiting, "key_a"))
    connection.zadd(KEYS.slots(DEFAULT_POOL), {stuck.id: time.time() - SLOT_LEASE - 1})
    # A dispatch between the dispatcher's looks for lapsed slots leaves it; its next look frees it.
    assert slots.dispatch(free_lapsed=False).jobs == [] and slots.holds(stuck)
    assert slots.dispatch().jobs == [waiting.id]  # the lapsed slot no longer counts against A
    assert held_by(slots, "key_a") == 1 and not slots.holds(stuck)
