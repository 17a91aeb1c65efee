"""BFL slots with both pools in play on a real Redis: random runs against a model, concurrent clients, pauses."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, KONTEXT_MAX_POOL, pool_for, pool_limit
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.slots import Slots
from slot_helpers import _config, in_flight

KONTEXT = "flux-kontext-max"
# slot_helpers._config's pools.
POOLS = (DEFAULT_POOL, KONTEXT_MAX_POOL)
FAIL = {"code": "bfl_error", "message": "x"}


def _client(connection) -> redis.Redis:
    """A client of its own, on the same database."""
    return redis.Redis(**{k: connection.connection_pool.connection_kwargs[k] for k in ("host", "port", "db")})


_BASE = time.time()
_count = iter(range(10**9))


def _queued(store: JobStore, model: str = "flux-2-pro") -> Job:
    """A queued job, created strictly after every earlier one (1 ms apart, no sleeping)."""
    created = _BASE + next(_count) * 0.001
    job = Job(id=new_job_id(created), status=st.QUEUED, model=model, pool=pool_for(model), input={"prompt": "x"},
              created_at=created, updated_at=created)
    store.create(job)
    return job


def _state(connection) -> tuple[dict, dict]:
    """Slot holders (sets) and lines (ids in order: every job here is the admin owner's) of both pools,
    read in one transaction."""
    pipe = connection.pipeline(transaction=True)
    for pool in POOLS:
        pipe.zrange(KEYS.slots(pool), 0, -1).zrange(KEYS.line(pool), 0, -1)
    h0, w0, h1, w1 = [[m.decode().removeprefix("admin:") for m in r] for r in pipe.execute()]
    return dict(zip(POOLS, (set(h0), set(h1)), strict=False)), dict(zip(POOLS, (w0, w1), strict=False))


class Model:
    """The rules of the slots module docstring, in plain Python."""

    def __init__(self, config: Config):
        self.total = config.bfl_max_active
        self.limits = {p: pool_limit(config, p) for p in POOLS}
        self.held = {p: set() for p in POOLS}
        self.line: dict[str, list[Job]] = {p: [] for p in POOLS}

    def room(self, pool: str) -> bool:
        return len(self.held[pool]) < self.limits[pool] and sum(map(len, self.held.values())) < self.total

    def acquire(self, job: Job) -> bool:
        if self.room(job.pool) and not any(self.line[p] and self.room(p) for p in POOLS):
            self.held[job.pool].add(job.id)
            return True
        self.line[job.pool].append(job)  # created after everyone: the back of the line
        return False

    def dispatch(self) -> list[str]:
        given = []
        while heads := [self.line[p][0] for p in POOLS if self.room(p) and self.line[p]]:
            job = min(heads, key=lambda j: j.created_at)
            self.line[job.pool].pop(0)
            self.held[job.pool].add(job.id)
            given.append(job.id)
        return given

    def forget(self, job: Job) -> None:
        self.held[job.pool].discard(job.id)
        self.line[job.pool] = [j for j in self.line[job.pool] if j.id != job.id]


def _check(model: Model, connection, dispatched: bool) -> None:
    held, lines = _state(connection)
    assert held == model.held and lines == {p: [j.id for j in model.line[p]] for p in POOLS}
    assert sum(map(len, held.values())) <= model.total
    assert len(held[KONTEXT_MAX_POOL]) <= model.limits[KONTEXT_MAX_POOL]
    everyone = [i for p in POOLS for i in [*held[p], *lines[p]]]
    assert len(everyone) == len(set(everyone))  # nobody both holds and waits, nor twice
    if dispatched:  # no idle capacity while a job that could use it waits
        assert not any(model.room(p) and model.line[p] for p in POOLS)


@pytest.mark.parametrize("seed,total,kontext", [(1, 4, 2), (2, 3, 1), (3, 5, 6), (4, 1, 1), (5, 6, 3)])
def test_random_mixed_runs_follow_the_rules(store, connection, seed, total, kontext):
    rng = random.Random(seed)
    config = _config(bfl_max_active=total, bfl_max_active_kontext_max=kontext)
    slots, model = Slots(connection, config), Model(config)
    jobs: dict[str, Job] = {}
    got = {p: [] for p in POOLS}  # creation times of the jobs given slots, in the order they got them
    for _ in range(400):
        step = rng.random()
        holders = sorted(i for p in POOLS for i in model.held[p])
        waiters = sorted(j.id for p in POOLS for j in model.line[p])
        given, dispatched = [], False
        if step < 0.4:
            job = _queued(store, KONTEXT if rng.random() < 0.4 else "flux-2-pro")
            jobs[job.id] = job
            assert bool(slots.acquire(job)) is model.acquire(job), job
            given = [job.id] if job.id in model.held[job.pool] else []
        elif step < 0.65 and holders:
            victim = jobs[rng.choice(holders)]
            if rng.random() < 0.5:
                assert store.transition(victim.id, st.FAILED, error=FAIL)
            else:  # through BFL: ready gives the slot back
                assert store.transition(victim.id, st.SUBMITTED, bfl_id=f"b-{victim.id}")
                assert store.transition(victim.id, st.READY, result_url="https://x/r.png")
            model.forget(victim)
        elif step < 0.78 and waiters:
            victim, how = jobs[rng.choice(waiters)], rng.choice(["delete", "fail", "moved on"])
            if how == "moved on":  # left queued while in line, slot-less: it leaves its line with the move
                assert store.transition(victim.id, st.SUBMITTED, bfl_id=f"b-{victim.id}")
                model.forget(victim)
            elif how == "delete":
                assert store.delete(victim.id) is not None
                model.forget(victim)
            else:
                assert store.transition(victim.id, st.FAILED, error=FAIL)
                model.forget(victim)
        else:
            given, dispatched = slots.dispatch().jobs, True
            assert given == model.dispatch()
        _check(model, connection, dispatched)
        for job in map(jobs.get, given):
            got[job.pool].append(job.created_at)
    for pool in POOLS:  # first come, first served within each pool
        assert got[pool] and got[pool] == sorted(got[pool])


def test_concurrent_mixed_clients_never_over_commit(store, connection):
    total, kontext = 5, 2
    config = _config(bfl_max_active=total, bfl_max_active_kontext_max=kontext)
    jobs = [_queued(store, KONTEXT if n % 3 == 0 else "flux-2-pro") for n in range(240)]
    granted: list[str] = []  # every slot handed out, by acquire or dispatch
    released: list[str] = []
    peak = [0, 0]  # most slots seen held at once: in all, of flux-kontext-max
    lock, done = threading.Lock(), threading.Event()

    def client(batch: list[Job]):
        own = _client(connection)
        slots, own_store, mine = Slots(own, config), JobStore(own), []
        for n, job in enumerate(batch):
            if n % 3 == 2 and mine:  # a slot given back, then handed out by this client's own dispatch
                own_store.transition(mine[0], st.FAILED, error=FAIL)
                with lock:
                    released.append(mine.pop(0))
            got = ([job.id] if slots.acquire(job) else []) + slots.dispatch().jobs
            mine += got
            with lock:
                granted.extend(got)

    def watcher():
        own = _client(connection)
        while not done.is_set():
            held, _ = _state(own)
            peak[:] = max(peak[0], len(held[DEFAULT_POOL]) + len(held[KONTEXT_MAX_POOL])), \
                max(peak[1], len(held[KONTEXT_MAX_POOL]))

    watch = threading.Thread(target=watcher)
    threads = [threading.Thread(target=client, args=(jobs[i::8],)) for i in range(8)]
    for t in [watch, *threads]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watch.join()
    assert 0 < peak[0] <= total and peak[1] <= kontext
    held, lines = _state(connection)
    assert all(store.get(i).status == st.FAILED for i in released)
    assert len(granted) == len(set(granted)) and len(granted) > len(released) > 20  # no job given two slots
    assert held[DEFAULT_POOL] | held[KONTEXT_MAX_POOL] == set(granted) - set(released)
    everyone = [i for p in POOLS for i in [*held[p], *lines[p]]] + released
    assert sorted(everyone) == sorted(j.id for j in jobs)  # each job holds, waits or ended: exactly once
    assert Slots(connection, config).dispatch().jobs == []  # no idle slot while a job that could use it waits


def test_a_paused_pool_does_not_hold_up_the_other(store, connection):
    slots = Slots(connection, _config(bfl_max_active=4, bfl_max_active_kontext_max=2))
    k1, k2, k3 = (_queued(store, KONTEXT) for _ in range(3))
    assert [bool(slots.acquire(k)) for k in (k1, k2, k3)] == [True, True, False]
    assert slots.requeue(k1, pause=30)  # BFL said flux-kontext-max is full
    assert slots.dispatch().jobs == []  # kontext-max has room but is paused
    # Two earlier kontext-max jobs wait, but their pool is paused: newcomers of the other pool go ahead.
    d1, d2, d3, d4 = (_queued(store) for _ in range(4))
    assert [bool(slots.acquire(d)) for d in (d1, d2, d3, d4)] == [True, True, True, False]
    store.transition(d1.id, st.FAILED, error=FAIL)
    assert slots.dispatch().jobs == [d4.id]
    assert in_flight(slots, DEFAULT_POOL) == 3 and in_flight(slots, KONTEXT_MAX_POOL) == 1
    # The pause over, the earliest waiting job gets the next free slot.
    connection.delete(KEYS.paused(KONTEXT_MAX_POOL))
    store.transition(d2.id, st.FAILED, error=FAIL)
    assert slots.acquire(_queued(store)) is None
    assert slots.dispatch().jobs == [k1.id]


def test_a_paused_default_pool_lets_kontext_max_newcomers_in(store, connection):
    slots = Slots(connection, _config(bfl_max_active=3, bfl_max_active_kontext_max=2))
    d1, d2 = _queued(store), _queued(store)
    assert slots.acquire(d1) and slots.acquire(d2) and slots.requeue(d1, pause=30)
    d3, k1, k2, k3 = _queued(store), *(_queued(store, KONTEXT) for _ in range(3))
    assert [bool(slots.acquire(j)) for j in (d3, k1, k2, k3)] == [False, True, True, False]  # held: d2, k1, k2
    assert slots.dispatch().jobs == []
    assert _state(connection) == ({DEFAULT_POOL: {d2.id}, KONTEXT_MAX_POOL: {k1.id, k2.id}},
                                  {DEFAULT_POOL: [d1.id, d3.id], KONTEXT_MAX_POOL: [k3.id]})
