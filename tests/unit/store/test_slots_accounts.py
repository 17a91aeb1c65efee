"""Slots over several BFL accounts on a real Redis: each account its own limits, a job only through an
account its route allows, the least busy first, none through a cooling account, and a slot given back moves on."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, Account, CoolingReason
from fluxhook.core.wait_reasons import WaitReason, in_line
from fluxhook.store.cooldowns import PROBATION, Cooldowns
from fluxhook.store.effects import AccountAccepted, Effects, Tallies
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.slots import Slots
from helpers import commands_during
from slot_helpers import _config, _queued, held_by

ACCOUNTS = (Account("eu", "k1", "http://127.0.0.1:1", region="eu", max_active=2),
            Account("eu2", "k2", "http://127.0.0.1:2", region="eu", max_active=2),
            Account("us", "k3", "http://127.0.0.1:3", region="us", max_active=3))


@pytest.fixture()
def store(connection) -> JobStore:
    return JobStore(connection, accounts=tuple(a.name for a in ACCOUNTS))


@pytest.fixture()
def slots(connection) -> Slots:
    return Slots(connection, replace(_config(), named_accounts=ACCOUNTS))


def _routed(store: JobStore, route: str | None = None):
    job = replace(_queued(store), route=route)
    store.update(job.id, only_in=(st.QUEUED,), route=route or "")
    return job


def _holders(connection) -> dict[str, list[str]]:
    return {a.name: sorted(m.decode() for m in connection.zrange(KEYS.slots(DEFAULT_POOL, a.name), 0, -1))
            for a in ACCOUNTS}


def test_jobs_go_to_the_least_busy_account_within_each_ones_limit(store, slots, connection):
    jobs = [_routed(store) for _ in range(9)]
    taken = [slots.acquire(job) for job in jobs]
    assert [bool(t) for t in taken] == [True] * 7 + [False] * 2  # 2 + 2 + 3 slots
    assert taken == [slots.account_of(j.id) for j in jobs]  # each told whose slot it took
    held = _holders(connection)
    assert [len(held[a.name]) for a in ACCOUNTS] == [2, 2, 3]
    # The first three went one to each: every account equally idle, each took the next.
    assert {slots.account_of(j.id) for j in jobs[:3]} == {"eu", "eu2", "us"}


def test_a_job_goes_only_through_an_account_its_route_allows(store, slots, connection):
    eu_jobs = [_routed(store, "r:eu") for _ in range(5)]
    assert [bool(slots.acquire(job)) for job in eu_jobs] == [True] * 4 + [False]
    assert all(slots.account_of(j.id) in ("eu", "eu2") for j in eu_jobs[:4])
    assert _holders(connection)["us"] == []  # us has room, but not for EU jobs
    client = _routed(store, "a:us")
    assert slots.acquire(client) and slots.account_of(client.id) == "us"


def test_a_cooling_account_takes_nothing_and_its_queued_jobs_move_on(store, slots, connection):
    cooldowns = Cooldowns(connection)
    cooldowns.cool("eu", time.time() + 60, CoolingReason.UNAVAILABLE)
    jobs = [_routed(store, "r:eu") for _ in range(3)]
    assert [bool(slots.acquire(job)) for job in jobs] == [True, True, False]
    assert {slots.account_of(j.id) for j in jobs[:2]} == {"eu2"}
    # eu2 fails too: the job it held goes back in line, and nothing else may take it.
    cooldowns.cool("eu2", time.time() + 30, CoolingReason.UNAVAILABLE)
    assert slots.requeue(jobs[0]) and slots.account_of(jobs[0].id) is None
    assert slots.dispatch().jobs == []
    wait = in_line(slots.line_states([(DEFAULT_POOL, "admin", "r:eu")])[0], time.time())
    assert wait.reason == WaitReason.ACCOUNT_COOLING and time.time() + 25 < wait.until <= time.time() + 30
    # A job that may use us is not held up by the EU accounts' cooldown.
    other = _routed(store)
    assert slots.acquire(other) and slots.account_of(other.id) == "us"
    # eu recovers: the EU jobs in line go there, oldest first.
    connection.delete(KEYS.cooling("eu"))
    assert slots.dispatch().jobs == [jobs[0].id, jobs[2].id]
    assert slots.account_of(jobs[0].id) == "eu"


def test_a_dispatch_says_whether_a_cooldown_or_a_pause_holds_a_waiting_job_back(store, slots, connection):
    # Nothing waits: no wait named. Then every slot is taken (2 + 2 + 3) and one job waits: a slot that frees pushes
    # a wake-up for it, so the dispatch is not on a timer.
    idle = slots.dispatch()
    assert idle.jobs == [] and not idle.waiting and not idle.on_timer
    jobs = [_routed(store) for _ in range(8)]
    assert [bool(slots.acquire(job)) for job in jobs] == [True] * 7 + [False]
    full = slots.dispatch()
    assert full.jobs == [] and full.waiting and not full.on_timer
    # us gives a slot back with BFL's Retry-After: it has room, but its pool pauses, and only the clock ends that.
    given_back = next(j for j in jobs if slots.account_of(j.id) == "us")
    assert slots.requeue(given_back, pause=30)
    paused = slots.dispatch()
    assert paused.jobs == [] and paused.waiting and paused.on_timer
    connection.delete(KEYS.paused(DEFAULT_POOL, "us"))
    assert slots.dispatch().jobs == [given_back.id]
    # A job only eu may take, eu cooling and eu2 full: on a timer again.
    Cooldowns(connection).cool("eu", time.time() + 60, CoolingReason.UNAVAILABLE)
    eu_job = next(j for j in jobs if slots.account_of(j.id) == "eu")
    assert slots.requeue(eu_job) and not slots.dispatch().jobs  # it goes back in line, and the last job waits too
    assert slots.dispatch().on_timer


def test_a_cooldown_is_extended_never_shortened_and_a_402_lasts_until_lifted(connection):
    cooldowns, now = Cooldowns(connection), time.time()
    assert cooldowns.cool("us", now + 30, CoolingReason.UNAVAILABLE) == pytest.approx(now + 30)
    assert cooldowns.cool("us", now + 5, CoolingReason.UNAVAILABLE) == pytest.approx(now + 30)
    assert 25_000 + PROBATION * 1000 < connection.pttl(KEYS.cooling("us")) <= (30 + PROBATION) * 1000 + 5  # ms, rounded up
    assert cooldowns.cool("us", now + 40, CoolingReason.UNAVAILABLE) == pytest.approx(now + 40)
    cooldowns.cool("eu", now + 10, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    assert connection.pttl(KEYS.cooling("eu")) == -1  # past its until, it stays: only a balance above zero lifts it
    cooldowns.cool("eu", now + 1, CoolingReason.UNAVAILABLE)
    assert cooldowns.of("eu", now).reason == CoolingReason.INSUFFICIENT_CREDITS
    assert not cooldowns.lift("eu", CoolingReason.UNAVAILABLE, now) and cooldowns.of("eu", now) is not None
    assert cooldowns.lift("eu", CoolingReason.INSUFFICIENT_CREDITS, now) and cooldowns.of("eu", now) is None


def test_a_slot_freed_at_one_account_and_a_pause_at_another(store, slots, connection):
    jobs = [_routed(store, "a:us") for _ in range(4)]
    assert [bool(slots.acquire(job)) for job in jobs] == [True, True, True, False]
    # BFL said 429 at us: its pool pauses there only; the job goes back in line.
    assert slots.requeue(jobs[1], pause=20)
    assert connection.pttl(KEYS.paused(DEFAULT_POOL, "us")) > 15_000
    assert connection.exists(KEYS.paused(DEFAULT_POOL, "eu")) == 0
    assert slots.dispatch().jobs == []
    anyone = _routed(store)
    assert slots.acquire(anyone) and slots.account_of(anyone.id) in ("eu", "eu2")
    # A task's end frees its slot where it was held, and its record of the account goes with it.
    assert store.transition(jobs[0].id, st.SUBMITTED, bfl_id="b0")
    assert store.transition(jobs[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert slots.account_of(jobs[0].id) is None and connection.hget(KEYS.routes, jobs[0].id) is None
    assert jobs[0].id not in _holders(connection)["us"]


def test_past_its_cooldown_an_account_takes_one_job_until_bfl_accepts_one(store, slots, connection):
    cooldowns = Cooldowns(connection)
    cooldowns.cool("us", time.time() + 0.05, CoolingReason.UNAVAILABLE)
    jobs = [_routed(store, "a:us") for _ in range(3)]
    assert [bool(slots.acquire(job)) for job in jobs] == [False] * 3
    wait_until = time.time() + 5
    while time.time() < wait_until and not slots.dispatch().jobs:
        pass  # the cooldown's end is a moment of the clock: the dispatch is what looks at it
    assert slots.account_of(jobs[0].id) == "us" and slots.dispatch().jobs == []  # one probe at a time
    assert cooldowns.of("us", time.time()) is None  # on probation it is not shown cooling
    Effects(connection, KEYS, 60, Tallies(connection).add).apply([AccountAccepted("us", DEFAULT_POOL, time.time())])
    assert cooldowns.of("us", time.time()) is None and not connection.exists(KEYS.cooling("us"))  # BFL took the probe
    assert slots.dispatch().jobs == [jobs[1].id, jobs[2].id]


def test_a_job_that_waits_reads_the_pauses_only_until_one_account_is_not_paused(store, slots, connection):
    for _ in range(7):
        assert slots.acquire(_routed(store))  # every account full: 2 + 2 + 3
    db = connection.connection_pool.connection_kwargs["db"]

    def pauses_read() -> list[str]:
        commands = commands_during(connection, db, lambda: slots.join(_routed(store)))
        return [c["command"].split(" ")[1] for c in commands if c["command"].startswith("PTTL")]

    # No account is paused nor cooling: the one EXISTS of them all says so, and no pause is read.
    assert pauses_read() == []
    connection.set(KEYS.paused(DEFAULT_POOL, "us"), 1, px=30_000)  # one paused: each is read as asked
    # The first account is not paused: no pause holds the job back, whatever the others' are.
    assert pauses_read() == [KEYS.paused(DEFAULT_POOL, "eu")]
    connection.set(KEYS.paused(DEFAULT_POOL, "eu"), 1, px=20_000)
    assert pauses_read() == [KEYS.paused(DEFAULT_POOL, "eu"), KEYS.paused(DEFAULT_POOL, "eu2")]
    # Every account paused: the pause is its reason, ending when the first one ends.
    connection.set(KEYS.paused(DEFAULT_POOL, "eu2"), 1, px=10_000)
    connection.set(KEYS.paused(DEFAULT_POOL, "us"), 1, px=30_000)
    state = slots.join(_routed(store)).line
    assert in_line(state, time.time()).reason == WaitReason.BFL_CAPACITY
    assert state.paused_until == pytest.approx(time.time() + 10, abs=1)


def test_a_later_job_served_in_its_owner_s_blocked_head_s_place_is_served_once(store, slots, connection):
    for _ in range(3):
        assert slots.acquire(_routed(store, "a:us")) == "us"  # us full
    blocked, free = _routed(store, "a:us"), _routed(store)
    for job in (blocked, free):
        slots.join(job, send_here=False)
    # The owner's head can go only through us: its next job goes in its place, once, holding one slot.
    assert slots.dispatch().jobs == [free.id]
    holding = [name for name, jobs in _holders(connection).items() if free.id in jobs]
    assert len(holding) == 1 and held_by(slots, None) == 4
    assert slots.account_of(blocked.id) is None
