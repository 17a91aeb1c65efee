"""Fair turns inside a key on a real Redis: a key's turns (at BFL's slots, in the work lines, in the check line) go in
turns between its app's end users by the rule between keys (``lua/fair_turns.lua``), its share against other keys
its own however many end users it names, and a key naming none taken as it always was."""

from __future__ import annotations

import heapq
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from hypothesis.configuration import set_hypothesis_home_dir

from fair_model import FairModel
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, pool_for
from fluxhook.core.fair_turns import FairTurns
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.check_line import CheckLine
from fluxhook.store.effects import AddWork, Effects, Tallies
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import forms, member, member_job, owner_range, tag
from fluxhook.store.queues import QUEUE_KEY
from fluxhook.store.scripts import source
from fluxhook.store.slots import Slots
from fluxhook.store.work_lines import AHEAD, DOWNLOAD, WorkLines
from helpers import commands_during
from slot_helpers import _config, add_work, waiting_of

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fluxhook-hypothesis")

FAIL = {"code": "bfl_error", "message": "x"}
_BASE = time.time()
_count = iter(range(10**9))
QUEUE = "test:rq:queue"


def _take(work: WorkLines, most: int) -> list[str]:
    """Up to ``most`` members of the download line, their RQ tasks queued at once (as enqueueing.feed does)."""
    members = work.take({DOWNLOAD: QUEUE}, most, time.time()).items.get(DOWNLOAD, [])
    pipe = work.connection.pipeline(transaction=True)
    work.queued(DOWNLOAD, members, pipe)
    pipe.execute()
    return members


def _queued(store: JobStore, key_id: str | None, end_user: str | None = None) -> Job:
    """A queued job of app key ``key_id`` for ``end_user``, created strictly after every earlier one."""
    created = _BASE + next(_count) * 0.001
    job = Job(id=new_job_id(created), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
              input={"prompt": "x"}, created_at=created, updated_at=created, key_id=key_id, end_user=end_user)
    store.create(job)
    return job


def _end(store: JobStore, job_id: str) -> None:
    assert store.transition(job_id, st.FAILED, error=FAIL)


@pytest.mark.parametrize("end_user", ["u1", "a:b;c ~!é" * 10, "x" * 128])
def test_an_end_users_member_is_made_and_read_alike_by_python_and_the_scripts(connection, end_user):
    job_id = new_job_id()
    script = source("members") + ("\nreturn {members.member(ARGV[1], ARGV[2], false, nil, ARGV[3]),"
                                  " members.member(ARGV[1], ARGV[2], true, ARGV[4], ARGV[3]), members.tag(ARGV[3]),"
                                  " members.member_job(ARGV[1], ARGV[5]), members.forms(ARGV[1], ARGV[2], ARGV[4],"
                                  " ARGV[3])}")
    bulk = member("key_a", job_id, bulk=True, deadline=1_800_000_000.0, end_user=end_user)
    single, made_bulk, made_tag, read, *made_forms = [
        v.decode() for v in connection.eval(script, 0, "key_a", job_id, end_user, "1800000000", bulk)]
    assert single == member("key_a", job_id, end_user=end_user) and made_bulk == bulk and made_tag == tag(end_user)
    assert read == member_job(bulk) == member_job(single) == job_id
    assert made_forms == forms("key_a", job_id, 1_800_000_000.0, end_user)
    # Within its key's range, before the key's jobs of no end user of its form.
    connection.zadd("t:line", {single: 0, bulk: 0, member("key_a", new_job_id(0.0)): 0, member("key_ab", job_id): 0})
    got = [m.decode() for m in connection.zrangebylex("t:line", *owner_range("key_a"))]
    assert got[0] == single and got[-1] == bulk and len(got) == 3


def test_one_end_user_flooding_delays_another_of_its_key_by_one_turn_and_the_other_key_by_none(store, connection):
    slots = Slots(connection, _config(bfl_max_active=2))
    running = [j.id for j in (_queued(store, "key_a", "flood"), _queued(store, "key_b"))]
    assert all(slots.acquire(store.get(job_id)) for job_id in running)
    flood = [_queued(store, "key_a", "flood") for _ in range(100)]
    for job in flood:
        assert not slots.acquire(job)
    for round_ in range(6):  # key A's other end user, and key B, each send a job while A's flooder's backlog waits
        other, b = _queued(store, "key_a", "other"), _queued(store, "key_b")
        assert not slots.acquire(other) and not slots.acquire(b)
        given = []
        for _ in range(4):  # four slots free one after another: A's two turns and B's two
            _end(store, running.pop(0))
            given += slots.dispatch().jobs
            running.append(given[-1])
        # Key B's share as ever; key A's other end user within one of A's turns, never a place behind the backlog:
        # the first of A's turns once the flooder keeps a pass (its slots given back unsent credit it to the clock,
        # level with the other, which goes first), the second while it kept none (level too, its older job first).
        a_turns = [j for j in given if j != b.id]
        assert b.id in given and a_turns[:2].count(other.id) == 1
        assert round_ == 0 or a_turns[0] == other.id
        assert sum(1 for j in given if j in {job.id for job in flood}) == 2
    assert waiting_of(slots, "key_a") == [j.id for j in flood[12:]]


def test_a_key_naming_a_thousand_end_users_takes_one_share_not_a_thousand(store, connection):
    work = WorkLines(connection)
    pipe = connection.pipeline(transaction=True)
    for n in range(1000):
        add_work(work, DOWNLOAD, "key_a", new_job_id(), pipe, end_user=f"user-{n}")
    b = [new_job_id() for _ in range(20)]
    for job_id in b:
        add_work(work, DOWNLOAD, "key_b", job_id, pipe)
    pipe.execute()
    taken = [member_job(m) for m in _take(work, 40)]
    assert sum(1 for j in taken if j in set(b)) == 20  # half of the turns: one key against one key
    assert [m.partition(":")[0] for m in _take(work, 10)] == ["key_a"] * 10


def test_the_end_users_of_a_key_alternate_in_its_turns_each_in_its_own_order(connection):
    work = WorkLines(connection)
    pipe = connection.pipeline(transaction=True)
    flood = [new_job_id(_BASE + i) for i in range(50)]
    for job_id in flood:
        add_work(work, DOWNLOAD, "key_a", job_id, pipe, end_user="flood")
    late = [new_job_id(_BASE + 100 + i) for i in range(3)]
    for job_id in late:
        add_work(work, DOWNLOAD, "key_a", job_id, pipe, end_user="late")
    plain = new_job_id(_BASE + 200)
    add_work(work, DOWNLOAD, "key_a", plain, pipe)  # the key's own job, of no end user: one more taker of its turns
    pipe.execute()
    taken = [member_job(m) for m in _take(work, 9)]
    assert taken == [flood[0], late[0], plain, flood[1], late[1], flood[2], late[2], flood[3], flood[4]]


def test_an_end_user_keeps_a_pass_only_while_its_jobs_wait(connection):
    work = WorkLines(connection)
    pipe = connection.pipeline(transaction=True)
    for n in range(50):
        add_work(work, DOWNLOAD, "key_a", new_job_id(), pipe, end_user=f"user-{n % 25}")
    pipe.execute()
    assert len(_take(work, 30)) == 30
    kept = [f.decode() for f in connection.hkeys(KEYS.work_passes(DOWNLOAD)) if b"!" in f]
    assert len(kept) == 1 + 20  # the key's end users' clock, and those of the 20 with a job still waiting
    assert len(_take(work, 30)) == 20
    assert [f.decode() for f in connection.hkeys(KEYS.work_passes(DOWNLOAD)) if b"!" in f] == ["key_a!~"]


def test_a_key_naming_no_end_user_is_taken_as_the_model_takes_it_with_no_command_for_end_users(
        store, connection, redis_server):
    slots = Slots(connection, _config(bfl_max_active=2))
    model = FairModel(total=2, limits={DEFAULT_POOL: 2, "flux-kontext-max": 2})
    now = time.time()
    jobs = []
    for n in range(12):
        job = _queued(store, ("key_a", "key_b", None)[n % 3])
        owner = job.key_id or "admin"
        assert bool(slots.acquire(job)) == model.acquire(job.id, DEFAULT_POOL, owner, now)
        jobs.append(job.id)
    db = connection.connection_pool.connection_kwargs.get("db", 0)
    for held in jobs[:2]:
        _end(store, held)
        model.end(held, now, ran=False)
    given: list[str] = []
    seen = commands_during(connection, db, lambda: given.extend(slots.dispatch().jobs))
    assert given == model.dispatch(now)
    # A script's own text names end users' fields (its first run on a fresh server loads it): not a command for them.
    assert not [c for c in seen if "!" in c["command"] and not c["command"].startswith(("EVAL", "SCRIPT"))]


def test_an_end_users_job_leaves_every_line_as_it_ends_or_is_deleted(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    holder = _queued(store, "key_a", "u")
    assert slots.acquire(holder)
    waiting = [_queued(store, "key_a", "u") for _ in range(3)]
    for job in waiting:
        assert not slots.acquire(job)
    _end(store, waiting[0].id)
    store.delete(waiting[1].id)
    assert waiting_of(slots, "key_a") == [waiting[2].id]
    _end(store, holder.id)
    assert slots.dispatch().jobs == [waiting[2].id]
    assert connection.zcard(KEYS.line(DEFAULT_POOL)) == 0


@pytest.mark.parametrize("backlog", [0, 1])
def test_an_end_users_job_alone_in_its_key_costs_a_take_no_more_commands_than_a_job_of_none(connection, backlog):
    work = WorkLines(connection)
    db = connection.connection_pool.connection_kwargs.get("db", 0)

    def commands(end_user: str | None) -> list[str]:
        pipe = connection.pipeline(transaction=True)
        for _ in range(1 + backlog):
            add_work(work, DOWNLOAD, "key_a", new_job_id(), pipe, end_user=end_user)
        pipe.execute()
        seen = commands_during(connection, db, lambda: _take(work, 1))
        _take(work, 10)
        # A connection's first command selects its database and a script's first run may load it: not the take's.
        return [c["command"].split()[0] for c in seen if c["command"].split()[0] not in ("SELECT", "SCRIPT")]

    _take(work, 1)
    plain, named = commands(None), commands("u1")
    # With more of its own waiting, one lookup of whether any is left (its pass is kept only while one is).
    assert len(named) == len(plain) + backlog, "\n".join(map(str, (plain, named)))


class TwoLevelModel:
    """The work lines' turns in plain Python, end users included: the rule of turns (``FairTurns``) between owners, a
    turn costing 1 / weight, and inside an owner by the same rule between the end users of its first form (single jobs,
    else batch items), each end user's turn costing 1, its pass kept only while its form holds more of it; level, one
    keeping no pass goes first. An end user's stay in line is an owner to its key's own ``FairTurns``, named by the
    job whose turn began its pass (as the scripts keep it): back from idle, it is a new one, with no pass."""

    def __init__(self, weights: dict[str, float]):
        self.weights = weights
        self.items: dict[str, dict[str, tuple[bool, str, str]]] = {}  # owner -> {member: (bulk, tag, job id)}
        self.turns: FairTurns[str] = FairTurns()
        self.inner: dict[str, FairTurns[tuple[str, str | None]]] = {}  # owner -> its end users' turns
        self.born: dict[tuple[str, str], str] = {}  # (owner, tag) -> the job whose turn began its kept pass

    def add(self, owner: str, job_id: str, bulk: bool, deadline: float | None, end_user: str | None) -> None:
        self.items.setdefault(owner, {})[member(owner, job_id, bulk=bulk, deadline=deadline, end_user=end_user)] = (
            bulk, tag(end_user), job_id)

    def _inner_pick(self, owner: str) -> tuple[str, list[str], bool]:
        """The end user whose turn is the owner's next, its members of that form, and whether the form names any."""
        held = self.items[owner]
        bulk = held[min(held)][0]  # its first form: single jobs while it has any
        groups: dict[str, list[str]] = {}
        for item in sorted(held):
            if held[item][0] == bulk:
                groups.setdefault(held[item][1], []).append(item)
        turns = self.inner.setdefault(owner, FairTurns())
        # Level, one keeping no pass (just come) before one that keeps one; then the earliest job.
        picked = turns.earliest(((t, self.born.get((owner, t))), ((owner, t) in self.born, held[items[0]][2]))
                                for t, items in groups.items())
        assert picked is not None
        (t, _), _ = picked
        return t, groups[t], set(groups) != {""}

    def take(self) -> str | None:
        heads = {owner: self._inner_pick(owner) for owner, held in self.items.items() if held}
        turn = self.turns.earliest((owner, self.items[owner][group[0]][2]) for owner, (_, group, _) in heads.items())
        if turn is None:
            return None
        owner, job = turn
        t, group, named = heads[owner]
        del self.items[owner][group[0]]
        self.turns.serve(owner, 1, self.weights.get(owner, 1))
        # A form naming no end user is served as an owner's always was: no turn of its end users is charged.
        if named:
            born = self.born.pop((owner, t), job)
            self.inner[owner].serve((t, born))
            if len(group) > 1:
                self.born[owner, t] = born
        return job


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=hs.lists(hs.one_of(
    hs.tuples(hs.just("add"), hs.sampled_from(["key_a", "key_b", "admin"]),
              hs.sampled_from([None, "u1", "u2", "u3", "a much longer end user: ~!;"]), hs.booleans(),
              hs.sampled_from([None, 1_800_000_000.0, 1_700_000_000.0])),
    hs.tuples(hs.just("take"), hs.integers(1, 4))), min_size=5, max_size=60))
def test_random_runs_of_end_users_and_keys_match_the_two_level_model(connection, steps):
    connection.flushdb()
    connection.hset(KEYS.share_weights, mapping={"key_a": 2, "key_b": 1})
    work, model = WorkLines(connection), TwoLevelModel({"key_a": 2, "key_b": 1})
    for n, step in enumerate(steps):
        if step[0] == "add":
            _, owner, end_user, bulk, deadline = step
            job_id = new_job_id(_BASE + n)
            pipe = connection.pipeline(transaction=True)
            add_work(work, DOWNLOAD, None if owner == "admin" else owner, job_id, pipe, bulk=bulk, deadline=deadline,
                     end_user=end_user)
            pipe.execute()
            model.add(owner, job_id, bulk, deadline, end_user)
        else:
            expected = [j for j in (model.take() for _ in range(step[1])) if j is not None]
            assert [member_job(m) for m in _take(work, step[1])] == expected


def _submitted(store: JobStore, key_id: str, end_user: str | None, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        created = _BASE + next(_count) * 0.001
        job = Job(id=new_job_id(created), status=st.SUBMITTED, model="flux-2-pro", bfl_id=f"task-{new_job_id()}",
                  key_id=key_id, created_at=created, updated_at=created, end_user=end_user)
        store.create(job)
        ids.append(job.id)
    return ids


def test_the_check_line_takes_a_keys_checks_in_turns_between_its_end_users(store, connection):
    checks = CheckLine(connection)
    flood, other = _submitted(store, "key_a", "flood", 50), _submitted(store, "key_a", "other", 2)
    checks.add([*flood, *other], claim=1.0)
    assert [c.job_id for c in checks.take(5)] == [flood[0], other[0], flood[1], other[1], flood[2]]


def test_a_job_handed_back_goes_back_to_its_end_users_place(store, connection):
    slots = Slots(connection, _config(bfl_max_active=1))
    first, second = _queued(store, "key_a", "u"), _queued(store, "key_a", "u")
    assert slots.acquire(first) and not slots.acquire(second)
    assert slots.requeue(store.get(first.id))  # BFL refused it: its slot back, it in line again, first of the two
    assert waiting_of(slots, "key_a") == [first.id, second.id]
    assert slots.dispatch().jobs == [first.id]


def test_a_download_added_with_a_jobs_change_is_its_end_users_member(store, connection):
    work = WorkLines(connection)
    jobs = [Job(id=new_job_id(_BASE + n), status="stored", key_id="key_a", end_user=eu)
            for n, eu in enumerate(["flood", "flood", "flood", "other"])]
    for job in jobs:
        store.create(job)
    effects = Effects(connection, KEYS, 3600, Tallies(connection).add)
    connection.rpush(QUEUE_KEY, *["busy"] * AHEAD)  # RQ's queue full: all wait in the line
    assert effects.apply([AddWork(DOWNLOAD, job.id) for job in jobs]) == {}
    assert all(work.pending(DOWNLOAD, "key_a", job.id, end_user=job.end_user) for job in jobs)
    connection.delete(QUEUE_KEY)
    assert [member_job(m) for m in _take(work, 3)] == [jobs[0].id, jobs[3].id, jobs[1].id]


START = 1_800_000_000.0


class Clock:
    """The scripts' clock, run by hand."""

    def __init__(self):
        self.now = START

    def __call__(self) -> float:
        return self.now


def test_a_keys_end_users_share_its_slot_time_not_its_number_of_tasks(connection):
    """One key, its end user ``long`` of 30 s tasks beside ``short`` of 1 s, each with a backlog, on 4 slots for 5
    minutes (the scripts' clock run by hand): each end user's turns are settled to its tasks' own seconds. Charged
    the key's estimate as it takes a slot (one average for both), the long one is ahead by its tasks in flight: 0.59
    of the time, where shares by count of tasks would give it 0.97."""
    clock = Clock()
    store, slots = JobStore(connection, clock=clock), Slots(connection, _config(bfl_max_active=4), clock=clock)
    lengths = {"long": 30.0, "short": 1.0}
    end_user_of, started = {}, []
    for end_user, length in lengths.items():
        for _ in range(int(300 / length) * 4 + 4):
            created = clock() + next(_count) * 0.001
            job = Job(id=new_job_id(created), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
                      input={"prompt": "x"}, created_at=created, updated_at=created, key_id="key_a",
                      end_user=end_user)
            store.create(job)
            end_user_of[job.id] = end_user
            if slots.acquire(job):
                started.append(job.id)
    used, ends = dict.fromkeys(lengths, 0.0), []
    while True:
        for job_id in [*started, *slots.dispatch().jobs]:
            assert store.transition(job_id, st.SUBMITTED, bfl_id=f"b-{job_id}")
            heapq.heappush(ends, (clock.now + lengths[end_user_of[job_id]], job_id))
        started = []
        end, job_id = heapq.heappop(ends)
        if end > START + 300:
            break
        clock.now = end
        used[end_user_of[job_id]] += lengths[end_user_of[job_id]]
        assert store.transition(job_id, st.READY, result_url="https://x/r.png")
    assert used["long"] / sum(used.values()) == pytest.approx(0.5, abs=0.15), used


def test_a_backlog_credited_its_slot_time_back_takes_no_turn_before_a_newcomer_of_its_key(connection):
    """Slot time given back credits the flooder's pass (its turns were charged 10 s, its tasks took a second), down
    to the key's end users' clock, where a newcomer's turn starts too: level, the newcomer goes first. Else the
    backlog's older job would win the tie and take the slot that freed first, one turn more than it is owed."""
    clock = Clock()
    store, slots = JobStore(connection, clock=clock), Slots(connection, _config(bfl_max_active=2), clock=clock)

    def queued(end_user: str) -> Job:
        created = clock() + next(_count) * 0.001
        job = Job(id=new_job_id(created), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
                  input={"prompt": "x"}, created_at=created, updated_at=created, key_id="key_a", end_user=end_user)
        store.create(job)
        return job

    def sent(job_id: str) -> None:
        assert store.transition(job_id, st.SUBMITTED, bfl_id=f"b-{job_id}")

    def ended(*job_ids: str) -> None:
        for job_id in job_ids:
            assert store.transition(job_id, st.READY, result_url="https://x/r.png")

    running = [queued("flood") for _ in range(2)]
    for job in running:
        assert slots.acquire(job)
        sent(job.id)
    backlog = [queued("flood") for _ in range(8)]
    for job in backlog:
        assert not slots.acquire(job)
    # Ten seconds a task, learned; each of the backlog's turns below is charged that.
    clock.now += 10
    ended(running[0].id)
    assert slots.dispatch().jobs == [backlog[0].id]
    sent(backlog[0].id)
    clock.now += 0.5
    ended(running[1].id)
    assert slots.dispatch().jobs == [backlog[1].id]
    sent(backlog[1].id)
    other = queued("someone else")
    assert not slots.acquire(other)
    # Both of the backlog's tasks end within a second: nearly 20 s given back to the flooder's pass.
    clock.now += 0.5
    ended(backlog[0].id, backlog[1].id)
    assert slots.dispatch().jobs == [other.id, backlog[2].id]
