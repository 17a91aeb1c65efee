"""BFL slots and the due index on a real Redis: limits across clients, FIFO, release, claims."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, KONTEXT_MAX_POOL, pool_limit
from fluxhook.core.holds import SLOT_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.wait_reasons import Place
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.slots import OwnerJobs, Slots
from helpers import commands_during
from slot_helpers import _config, _queued, _url, in_flight, slot_freed


@pytest.fixture()
def slots(connection) -> Slots:
    return Slots(connection, _config(bfl_max_active=3, bfl_max_active_kontext_max=1))




def _held(connection, pool: str = DEFAULT_POOL) -> list[str]:
    return [m.decode() for m in connection.zrange(KEYS.slots(pool), 0, -1)]


def test_slots_up_to_the_limit_then_a_fifo_line(store, slots, connection):
    jobs = [_queued(store) for _ in range(6)]
    assert [bool(slots.acquire(j)) for j in jobs] == [True, True, True, False, False, False]
    assert in_flight(slots, DEFAULT_POOL) == 3 and slots.waiting(DEFAULT_POOL) == 3
    assert slots.dispatch().jobs == []

    # Ready frees a slot (BFL is done); the first in line gets it.
    assert store.transition(jobs[0].id, st.SUBMITTED, bfl_id="b0")
    assert store.transition(jobs[0].id, st.READY, result_url="https://x/0.png")
    assert slots.dispatch().jobs == [jobs[3].id]
    # Terminal statuses free slots too.
    store.transition(jobs[1].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    store.delete(jobs[2].id)
    assert slots.dispatch().jobs == [jobs[4].id, jobs[5].id]
    assert sorted(_held(connection)) == sorted([jobs[3].id, jobs[4].id, jobs[5].id])


def test_a_new_job_does_not_overtake_the_line(store, slots):
    first = [_queued(store) for _ in range(4)]
    for job in first:
        slots.acquire(job)
    store.transition(first[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    # A slot is free, but first[3] waits for it: the newcomer queues behind.
    late = _queued(store)
    assert slots.acquire(late) is None
    assert slots.dispatch().jobs == [first[3].id]


def test_requeue_keeps_its_place_and_a_pause_holds_the_pool(store, slots):
    jobs = [_queued(store) for _ in range(4)]
    for job in jobs:
        slots.acquire(job)
    assert slots.requeue(jobs[1], pause=30)
    assert slots.waiting(DEFAULT_POOL) == 2 and in_flight(slots, DEFAULT_POOL) == 2
    assert slots.dispatch().jobs == []  # paused, though a slot is free
    assert slots.acquire(_queued(store)) is None
    store.connection.delete(KEYS.paused(DEFAULT_POOL))
    # jobs[1] was created before jobs[3], so it is first again.
    assert slots.dispatch().jobs == [jobs[1].id]


def test_a_requeue_that_frees_a_slot_wakes_one_dispatcher_with_one_push(store, slots, connection):
    jobs = [_queued(store) for _ in range(4)]
    for job in jobs:
        slots.acquire(job)
    connection.delete(KEYS.slot_freed)
    pushes = commands_during(connection, 3, lambda: slots.requeue(jobs[0]))
    # Its slot freed and it back in line are one reason to look: one LPUSH, and one item waiting.
    assert [c["command"].split(" ")[0] for c in pushes].count("LPUSH") == 1
    assert connection.llen(KEYS.slot_freed) == 1
    assert slots.dispatch().jobs == [jobs[0].id]


def test_requeue_of_a_job_that_moved_on_changes_nothing(store, slots):
    job = _queued(store)
    slots.acquire(job)
    store.transition(job.id, st.SUBMITTED, bfl_id="b1")
    assert slots.requeue(job) is False
    assert in_flight(slots, DEFAULT_POOL) == 1 and slots.waiting(DEFAULT_POOL) == 0


def test_a_job_waiting_aside_is_its_owners_out_of_line_and_back_in_line_at_its_place(store, slots, connection):
    jobs = [_queued(store) for _ in range(4)]
    for job in jobs:
        slots.acquire(job)
    assert slots.requeue(jobs[1], wait=60)  # the budget said no to it: it alone waits, its slot freed
    assert connection.zrange(KEYS.aside, 0, -1) == [f"admin:{jobs[1].id}".encode()]
    assert store.due_at(jobs[1].id) > time.time() + 50 and slots.waiting(DEFAULT_POOL) == 1
    places, _ = slots.look(jobs)
    assert places == [Place.SLOT, Place.ASIDE, Place.SLOT, Place.LINE]
    # One round trip, a script's: no pipeline whose scripts redis-py checks for first (SCRIPT EXISTS).
    looked = commands_during(connection, 3, lambda: slots.look(jobs))
    sent = [c["command"].split(" ")[0] for c in looked if c["client_type"] != "lua"]
    assert [name for name in sent if name not in ("SELECT", "HELLO", "CLIENT")] == ["EVALSHA"]  # no new connection's
    now, _ = slots.owners_now(["admin"])
    assert (now.accounts[0].held, now.owner_held, now.owner_cap) == ({DEFAULT_POOL: 2, KONTEXT_MAX_POOL: 0}, {"admin": 2},
                                                         {"admin": None})
    assert slots.owners_now(["admin"])[1]["admin"].aside == [jobs[1].id]

    connection.delete(KEYS.slot_freed)
    assert slots.requeue(jobs[1])  # its wait is over: back in line, before jobs[3]
    assert connection.zcard(KEYS.aside) == 0 and store.due_at(jobs[1].id) is None
    assert slot_freed(slots, 0.01)  # an idle dispatcher is woken for it, not left to its next idle look
    assert slots.owners_now(["admin"])[1]["admin"] == OwnerJobs({DEFAULT_POOL: 2, KONTEXT_MAX_POOL: 0}, [])
    store.transition(jobs[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert slots.dispatch().jobs == [jobs[1].id, jobs[3].id]  # two slots free: its own and jobs[0]'s


def test_the_slots_now_tell_each_pools_pause_and_each_owners_limit(store, slots, connection):
    job = _queued(store, "flux-kontext-max")
    assert slots.acquire(job)
    slots.set_share(None, None, 1)  # the admin tokens' jobs: at most one at BFL
    assert slots.requeue(job, pause=20)
    places, lines = slots.look([job])
    assert places == [Place.LINE]
    now = slots.accounts_now()
    assert time.time() + 15 < now[0].paused_until[KONTEXT_MAX_POOL] <= time.time() + 20
    assert DEFAULT_POOL not in now[0].paused_until
    line = lines[0]
    assert (line.owner_held, line.owner_cap, line.pool_held, line.pool_limit, line.total_limit) == (0, 1, 0, 1, 3)


def test_kontext_max_counts_toward_its_own_limit_and_the_overall_one(store, slots):
    # Limits: 3 in all, 1 of them flux-kontext-max.
    kontext = [_queued(store, "flux-kontext-max") for _ in range(2)]
    assert [bool(slots.acquire(j)) for j in kontext] == [True, False]
    # The waiting kontext-max job cannot use a slot (its pool is full): it does not hold others up.
    others = [_queued(store) for _ in range(3)]
    assert [bool(slots.acquire(j)) for j in others] == [True, True, False]
    assert in_flight(slots, KONTEXT_MAX_POOL) == 1 and in_flight(slots, DEFAULT_POOL) == 2


def test_a_freed_slot_goes_to_the_earliest_waiting_job_whichever_its_model(store, slots):
    holders = [_queued(store, "flux-kontext-max"), _queued(store), _queued(store)]
    assert all(slots.acquire(j) for j in holders)
    waiting_kontext, waiting_other = _queued(store, "flux-kontext-max"), _queued(store)
    assert not slots.acquire(waiting_kontext) and not slots.acquire(waiting_other)

    # A default slot frees: only the default job may take it (kontext-max is still at its limit).
    store.transition(holders[1].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert slots.dispatch().jobs == [waiting_other.id]
    # The kontext-max holder ends: the kontext-max job, first in line, gets the slot.
    store.transition(holders[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    late = _queued(store)
    assert slots.acquire(late) is None  # it would overtake the kontext-max job
    assert slots.dispatch().jobs == [waiting_kontext.id]
    assert in_flight(slots, KONTEXT_MAX_POOL) == 1 and in_flight(slots, DEFAULT_POOL) == 2
    assert slots.waiting(DEFAULT_POOL) == 1


def test_kontext_max_never_exceeds_bfl_max_active_either(store, connection):
    slots = Slots(connection, _config(bfl_max_active=2, bfl_max_active_kontext_max=6))
    assert [bool(slots.acquire(_queued(store, "flux-kontext-max"))) for _ in range(3)] == [True, True, False]
    assert pool_limit(_config(bfl_max_active=24, bfl_max_active_kontext_max=6), KONTEXT_MAX_POOL) == 6
    assert pool_limit(_config(bfl_max_active=2, bfl_max_active_kontext_max=6), KONTEXT_MAX_POOL) == 2


def test_a_slot_held_past_the_lease_is_reclaimed_by_the_dispatchers_look(store, slots, connection):
    stuck = _queued(store)
    slots.acquire(stuck)
    connection.zadd(KEYS.slots(DEFAULT_POOL), {stuck.id: time.time() - SLOT_LEASE - 1})
    for _ in range(2):
        assert slots.acquire(_queued(store))
    third = _queued(store)
    assert not slots.acquire(third)  # a new job looks for no lapsed slot: it waits in line
    assert slots.dispatch().jobs == [third.id]  # the dispatcher's look frees the stuck job's, and hands it on
    assert stuck.id not in _held(connection)


def test_many_clients_never_exceed_the_limit(store, connection):
    limit = 5
    jobs = [_queued(store) for _ in range(200)]
    granted: list[str] = []
    lock = threading.Lock()

    def client(batch: list[Job]):
        own = Slots(redis.Redis.from_url(_url(connection)),
                    _config(bfl_max_active=limit))
        for job in batch:
            if own.acquire(job):
                with lock:
                    granted.append(job.id)

    threads = [threading.Thread(target=client, args=(jobs[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == limit
    assert connection.zcard(KEYS.slots(DEFAULT_POOL)) == limit
    assert connection.zcard(KEYS.line(DEFAULT_POOL)) == 200 - limit


def test_due_index_follows_status(store):
    now = time.time()
    job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="t1", created_at=now,
                              updated_at=now, submitted_at=now), due=now + 45)
    assert store.due_at(job.id) == pytest.approx(now + 45, abs=0.01)
    assert store.update(job.id, due=now + 90)
    assert store.due_at(job.id) == pytest.approx(now + 90, abs=0.01)
    assert not store.transition(job.id, st.STORED, image={"sha256": "a"}, storage_key="k")  # not ready yet
    store.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert store.due_at(job.id) is None
    assert store.update(job.id, due=now) is False and store.due_at(job.id) is None


def test_claims_are_atomic_across_concurrent_sweeps(store, connection):
    now = time.time()
    ids = []
    for n in range(300):
        job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"c{n}", created_at=now,
                                  updated_at=now), due=now - 1)
        ids.append(job.id)
    store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="later", created_at=now, updated_at=now),
                 due=now + 600)
    taken: list[list[str]] = [[] for _ in range(4)]

    def sweeper(n: int):
        own = JobStore(redis.Redis.from_url(_url(connection)))
        while True:
            batch = own.claim_due(time.time(), 25, now + 300 + n)
            if not batch:
                return
            taken[n].extend(batch)

    threads = [threading.Thread(target=sweeper, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for batch in taken for i in batch]
    assert sorted(everything) == sorted(ids)  # each due job exactly once, the later one not at all


def test_only_the_current_claim_may_act(store):
    now = time.time()
    job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="k1", created_at=now,
                              updated_at=now), due=now - 1)
    assert store.claim_due(now, 10, now + 300) == [job.id]
    assert store.confirm_claim(job.id, now + 300, now + 100)
    assert not store.confirm_claim(job.id, now + 300, now + 100)  # taken already: a second check does nothing
    assert store.claim_due(now, 10, now + 301) == []


def test_a_freed_slot_goes_to_a_keys_earliest_deadline_and_another_key_keeps_its_turn(store, slots, connection):
    for _ in range(3):
        assert slots.acquire(_queued(store, key_id="key_a"))
    now = time.time()
    plain = _queued(store, key_id="key_a")  # the oldest waiting, with no deadline
    late = _queued(store, key_id="key_a", deadline=now + 600)
    soon = _queued(store, key_id="key_a", deadline=now + 60)
    other = _queued(store, key_id="key_b")
    for job in (plain, late, soon, other):
        assert slots.acquire(job) is None
    for job_id in _held(connection):
        store.transition(job_id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    # B's one job keeps its turn; A's go by deadline, earliest first, and the one without, made first, waits.
    given = slots.dispatch().jobs
    assert other.id in given and [job for job in given if job != other.id] == [soon.id, late.id]
    assert slots.waiting(DEFAULT_POOL) == 1
    # A requeue puts a job with a deadline back at its place: before its key's job without one.
    assert slots.requeue(soon)
    assert slots.dispatch().jobs == [soon.id]


def test_a_job_with_a_deadline_leaves_its_line_in_either_form_of_its_member(store, slots, connection):
    for _ in range(3):
        assert slots.acquire(_queued(store, key_id="key_a"))
    ended, gone = (_queued(store, key_id="key_a", deadline=time.time() + 60) for _ in range(2))
    assert slots.acquire(ended) is None and slots.acquire(gone) is None
    # An older release's member of it (unranked) is taken out as well as this one's.
    connection.zadd(KEYS.line(DEFAULT_POOL), {f"key_a:{ended.id}": 0})
    assert store.transition(ended.id, st.CANCELED)
    store.delete(gone.id)
    assert slots.waiting(DEFAULT_POOL) == 0
