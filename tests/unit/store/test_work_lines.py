"""The workers' work lines on a real Redis: jobs of one kind are taken for RQ in turn across keys, by the
slots' own rule (lua/fair_turns.lua), every kind in one call that costs next to nothing when no line has work; a
job taken is held by its move's lease in the due index alone until its task is queued, pending for a check that
claimed it before the take, and back in line if its process died in between."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from fluxhook.core.fair_turns import FairTurns
from fluxhook.core.holds import CLAIM_LEASE, MOVE_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import draft_cache_task
from fluxhook.store.effects import AddWork, Effects, Tallies
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import ADMIN_OWNER, member_job
from fluxhook.store.queues import QUEUE_KEY
from fluxhook.store.wakes import TIMEOUT, WORK, Wakes
from fluxhook.store.work_lines import AHEAD, DOWNLOAD, DRAFT_CACHE, KINDS, WorkLines
from helpers import commands_during
from slot_helpers import add_work


@pytest.fixture()
def work(connection) -> WorkLines:
    return WorkLines(connection)


def add(work: WorkLines, kind: str, key_id: str | None, n: int = 1) -> list[str]:
    ids = [new_job_id() for _ in range(n)]
    pipe = work.connection.pipeline(transaction=True)
    for job_id in ids:
        add_work(work, kind, key_id, job_id, pipe)
    pipe.execute()
    return ids


# The RQ queue a take counts: the tests queue nothing there, so ``most`` is all that bounds a take.
QUEUE = "test:rq:queue"


def take_members(work: WorkLines, kind: str, most: int, now: float) -> list[str]:
    """Take up to ``most`` of ``kind`` alone, not queued yet; their members."""
    return work.take({kind: QUEUE}, most, now).items.get(kind, [])


def take(work: WorkLines, kind: str, most: int = 1, now: float | None = None) -> list[str]:
    """Take up to ``most`` and queue them at once (as enqueueing.feed does); their job ids."""
    members = take_members(work, kind, most, time.time() if now is None else now)
    pipe = work.connection.pipeline(transaction=True)
    work.queued(kind, members, pipe)
    pipe.execute()
    return [member_job(m) for m in members]


def take_all(work: WorkLines, kind: str) -> list[str]:
    taken = []
    while got := take(work, kind):
        taken += got
    return taken


def test_one_owner_s_jobs_go_in_creation_order(work):
    ids = add(work, DOWNLOAD, "key_a", 20)
    assert take_all(work, DOWNLOAD) == ids


def test_a_job_behind_another_key_s_backlog_goes_within_the_first_two_turns(work):
    backlog = add(work, DOWNLOAD, "key_a", 150)
    [late] = add(work, DOWNLOAD, "key_b")
    taken = take_all(work, DOWNLOAD)
    assert late in taken[:2]
    assert [j for j in taken if j != late] == backlog


def test_an_owner_back_from_idle_saved_up_no_credit(work):
    add(work, DOWNLOAD, "key_b", 1)
    take_all(work, DOWNLOAD)
    add(work, DOWNLOAD, "key_a", 100)
    take_all(work, DOWNLOAD)  # A alone for 100 turns: B idle meanwhile
    a = add(work, DOWNLOAD, "key_a", 10)
    b = add(work, DOWNLOAD, "key_b", 10)
    taken = take_all(work, DOWNLOAD)
    # B starts level with A, not 100 turns ahead: they alternate.
    assert set(taken[:4]) & set(a) and set(taken[:4]) & set(b)
    assert max(taken.index(j) for j in b[:5]) < 12


def test_weights_3_to_1_give_three_of_a_s_per_b_s(work, connection):
    connection.hset(KEYS.share_weights, mapping={"key_a": 3, "key_b": 1})
    a = set(add(work, DRAFT_CACHE, "key_a", 60))
    add(work, DRAFT_CACHE, "key_b", 60)
    taken = take_all(work, DRAFT_CACHE)[:40]
    assert Counter("a" if j in a else "b" for j in taken) == {"a": 30, "b": 10}


def test_the_kinds_have_lines_and_turns_of_their_own(work):
    a = add(work, DOWNLOAD, "key_a", 5)
    b = add(work, DRAFT_CACHE, "key_b", 5)
    assert take_all(work, DRAFT_CACHE) == b
    assert take_all(work, DOWNLOAD) == a


def test_a_take_fills_the_rq_queue_up_to_its_bound_and_no_further(work, connection):
    add(work, DOWNLOAD, "key_a", 10)
    connection.rpush(QUEUE, "task-1", "task-2")  # two tasks already wait in RQ
    first = take_members(work, DOWNLOAD, 4, time.time())
    assert len(first) == 2
    connection.rpush(QUEUE, *first)  # queued, as its feed does before it takes again
    assert take_members(work, DOWNLOAD, 4, time.time()) == []  # no room left


def test_takes_between_another_take_and_its_queueing_overfill_by_at_most_one_ahead_each(work, connection):
    add(work, DOWNLOAD, "key_a", 20)
    connection.rpush(QUEUE, "task-1")
    # Three feeds take before any queues what it took: each counts the queue alone, not the others' moves.
    takes = [take_members(work, DOWNLOAD, AHEAD, time.time()) for _ in range(3)]
    assert [len(taken) for taken in takes] == [AHEAD - 1] * 3
    for taken in takes:
        connection.rpush(QUEUE, *taken)
    # The queue holds one AHEAD over for each of the two later takes (the bound), and nothing more is taken.
    assert connection.llen(QUEUE) == AHEAD + 2 * (AHEAD - 1) <= AHEAD + 2 * AHEAD
    assert take_members(work, DOWNLOAD, AHEAD, time.time()) == []


def test_one_take_goes_kind_by_kind_and_the_kinds_share_their_queue_s_room(work):
    downloads = add(work, DOWNLOAD, "key_a", 3)
    drafts = add(work, DRAFT_CACHE, "key_b", 3)
    taken = work.take({DOWNLOAD: QUEUE, DRAFT_CACHE: QUEUE}, 4, time.time())
    # The downloads first (their URLs expire first), then a draft cache in the one place left.
    assert {kind: [member_job(m) for m in members] for kind, members in taken.items.items()} == {
        DOWNLOAD: downloads, DRAFT_CACHE: drafts[:1]}
    assert work.take({DRAFT_CACHE: "test:rq:other"}, 4, time.time()).items == {
        DRAFT_CACHE: [f"key_b:{j}" for j in drafts[1:]]}


def test_a_take_with_no_work_costs_one_command_beside_the_script(work, connection):
    db = connection.connection_pool.connection_kwargs["db"]
    every = dict.fromkeys(KINDS, QUEUE)
    work.take(every, 4, time.time())  # loads the script
    taken = []
    commands = commands_during(connection, db, lambda: taken.append(work.take(every, 4, time.time())))
    names = [c["command"].split()[0] for c in commands if not c["command"].startswith("SELECT")]
    assert names == ["EVALSHA", "EXISTS"]
    assert taken[0].idle and not taken[0].items  # no line held work: what a lane's next feed may skip
    # Work waiting, but the queue full (as under load): one look at the queue, none at a line.
    add(work, DRAFT_CACHE, "key_a")
    connection.rpush(QUEUE, *[f"task-{n}" for n in range(4)])
    commands = commands_during(connection, db, lambda: taken.append(work.take(every, 4, time.time())))
    assert not taken[-1].idle and not taken[-1].items  # none taken, but a line holds work
    assert [c["command"].split()[0] for c in commands if not c["command"].startswith("SELECT")] == [
        "EVALSHA", "EXISTS", "LLEN"]
    # Room in the queue: the line's first owners say it holds work, with no look of its own.
    connection.delete(QUEUE)
    commands = commands_during(connection, db, lambda: work.take(every, 4, time.time()))
    names = [c["command"].split()[0] for c in commands if not c["command"].startswith("SELECT")]
    # The take: its job's lease, and its owner's pass; nothing else notes it.
    assert names.count("EXISTS") == 1 and names.count("ZADD") == 1 and names.count("HSET") == 1, names


def test_adding_work_wakes_one_feeder(work):
    add(work, DOWNLOAD, "key_a", 3)
    wakes = Wakes(work.connection)
    # One token, however much was added.
    assert [wakes.wait(KEYS.work_added, 0.05) for _ in range(2)] == [WORK, TIMEOUT]


def test_a_batch_is_taken_one_turn_at_a_time(work):
    a = add(work, DOWNLOAD, "key_a", 5)
    b = add(work, DOWNLOAD, "key_b", 5)
    assert take(work, DOWNLOAD, 4) == [a[0], b[0], a[1], b[1]]
    assert work.waiting(DOWNLOAD) == 6 and take(work, DOWNLOAD, 0) == []


def _claimed(work: WorkLines, job_id: str) -> float:
    """The job made due, claimed by a sweep and confirmed by its check; the hold that check's claim set."""
    jobs, now = JobStore(work.connection), time.time()
    work.connection.zadd(KEYS.due, {job_id: now - 1})
    assert jobs.claim_due(now, 10, now + CLAIM_LEASE) == [job_id]
    assert jobs.confirm_claim(job_id, now + CLAIM_LEASE, now + CLAIM_LEASE + 1)
    return now + CLAIM_LEASE + 1


def test_a_job_taken_since_a_check_s_claim_is_pending_for_that_check(work):
    [job_id] = add(work, DOWNLOAD, "key_a")
    hold = _claimed(work, job_id)
    assert work.pending(DOWNLOAD, "key_a", job_id, hold=hold)  # in its line
    [member] = take_members(work, DOWNLOAD, 1, time.time())  # a feed takes it while the check runs
    assert member == f"key_a:{job_id}" and work.waiting(DOWNLOAD) == 0
    # On its way into RQ, its task queued any moment: the check must not queue it again.
    assert work.pending(DOWNLOAD, "key_a", job_id, hold=hold)
    assert not work.pending(DOWNLOAD, "key_a", job_id)  # asked with no claim, only the line answers
    # A draft cache's queueing drops its job's due time: gone from the check's hold too.
    [draft] = add(work, DRAFT_CACHE, "key_a")
    hold = _claimed(work, draft)
    take(work, DRAFT_CACHE)
    assert work.connection.zscore(KEYS.due, draft) is None and work.pending(DRAFT_CACHE, "key_a", draft, hold=hold)


def test_a_move_is_held_by_a_lease_in_the_due_index_alone_and_one_whose_process_died_is_not_pending(work):
    [lost, kept] = add(work, DOWNLOAD, "key_a", 2)
    now = time.time()
    assert take_members(work, DOWNLOAD, 1, now - 120) == [f"key_a:{lost}"]  # its process died before queueing
    # Held like any of fluxhook's own work: the job due when its move's lease lapses, for its check to repair; no
    # other key written for it.
    assert work.connection.zscore(KEYS.due, lost) == pytest.approx(now - 120 + MOVE_LEASE, abs=0.01)
    assert not work.connection.keys("*moving*")
    # Lapsed, so the sweep claims it: its check finds it neither in line nor taken since, and puts it back.
    assert not work.pending(DOWNLOAD, "key_a", lost, hold=_claimed(work, lost))
    # Queued: a download's job stays due as its move left it (its check finds the task in RQ).
    assert take(work, DOWNLOAD, 5) == [kept]
    assert work.connection.zscore(KEYS.due, kept) == pytest.approx(time.time() + MOVE_LEASE, abs=1)


def test_a_job_added_twice_waits_once(work):
    [job_id] = add(work, DOWNLOAD, None)
    pipe = work.connection.pipeline(transaction=True)
    add_work(work, DOWNLOAD, None, job_id, pipe)
    pipe.execute()
    assert work.waiting(DOWNLOAD) == 1
    assert work.pending(DOWNLOAD, None, job_id)
    assert take_all(work, DOWNLOAD) == [job_id]


def test_an_unknown_kind_is_refused(work):
    with pytest.raises(ValueError):
        take_members(work, "poster", 1, time.time())
    assert set(KINDS) == {"download", "download_hour", "download_long", "draft_cache"}


def test_work_joins_its_line_under_the_job_s_owner_with_the_job_s_change(connection, work):
    jobs = JobStore(connection)
    mine = Job(id=new_job_id(), status="stored", key_id="key_c")
    admins = Job(id=new_job_id(), status="stored")
    jobs.create(mine)
    jobs.create(admins)
    effects = Effects(connection, KEYS, 3600, Tallies(connection).add)
    work = [draft_cache_task(mine.id), draft_cache_task(admins.id), draft_cache_task("job_gone")]
    # No line holds work and RQ's queue has room: taken at once, for the caller to queue.
    assert effects.apply(work) == {DRAFT_CACHE: [f"key_c:{mine.id}", f"{ADMIN_OWNER}:{admins.id}"]}
    connection.rpush(QUEUE_KEY, *["busy"] * AHEAD)  # RQ's queue full: each joins its line
    assert effects.apply(work) == {}
    assert sorted(m.decode() for m in connection.zrange(KEYS.work_line(DRAFT_CACHE), 0, -1)) == sorted(
        [f"key_c:{mine.id}", f"{ADMIN_OWNER}:{admins.id}"])  # a job gone meanwhile is not added


def test_work_of_several_kinds_taken_at_once_in_one_step_never_overfills_rq(connection, work):
    jobs = JobStore(connection)
    made = [Job(id=new_job_id(), status="stored", key_id="key_c") for _ in range(AHEAD + 1)]
    for job in made:
        jobs.create(job)
    effects = Effects(connection, KEYS, 3600, Tallies(connection).add)
    work_of = [AddWork(DOWNLOAD, job.id) for job in made[:3]] + [draft_cache_task(job.id) for job in made[3:]]
    # RQ's queue has room for AHEAD, whatever the kinds: the last waits in its line, as a feed would leave it.
    taken = effects.apply(work_of)
    assert sum(len(members) for members in taken.values()) == AHEAD
    assert taken[DOWNLOAD] == [f"key_c:{job.id}" for job in made[:3]] and len(taken[DRAFT_CACHE]) == 1
    assert connection.zrange(KEYS.work_line(DRAFT_CACHE), 0, -1) == [f"key_c:{made[-1].id}".encode()]


def test_random_backlogs_match_a_plain_model(work, connection):
    # The rule of turns (FairTurns), each turn costing 1 / weight.
    rng = random.Random(7)
    weights = {"k1": 1, "k2": 2, "k3": 0.5}
    connection.hset(KEYS.share_weights, mapping=weights)
    turns: FairTurns[str] = FairTurns()
    lines: dict[str, list[str]] = {k: [] for k in weights}
    for _ in range(300):
        if rng.random() < 0.5:
            owner = rng.choice(list(weights))
            lines[owner] += add(work, DOWNLOAD, owner)
            continue
        got = take(work, DOWNLOAD)
        turn = turns.earliest((o, line[0]) for o, line in lines.items() if line)
        if turn is None:
            assert got == []
            continue
        owner, job = turn
        turns.serve(owner, 1, weights[owner])
        assert got == [lines[owner].pop(0)] == [job]


def test_a_key_s_single_job_goes_before_its_own_batch_items_and_another_key_keeps_its_turns(connection, work):
    jobs = JobStore(connection)
    batch = [Job(id=new_job_id(), status="stored", key_id="key_a", batch_id="batch_1") for _ in range(4)]
    theirs = [Job(id=new_job_id(), status="stored", key_id="key_b") for _ in range(2)]
    single = Job(id=new_job_id(), status="stored", key_id="key_a")  # made last: its id sorts after the batch's
    for job in (*batch, *theirs, single):
        jobs.create(job)
    effects = Effects(connection, KEYS, 3600, Tallies(connection).add)
    connection.rpush(QUEUE_KEY, *["busy"] * AHEAD)  # RQ's queue full: all wait in the line
    assert effects.apply([AddWork(DOWNLOAD, job.id) for job in (*batch, *theirs, single)]) == {}
    assert connection.zscore(KEYS.work_line(DOWNLOAD), f"key_a:~{batch[0].id}") is not None  # the bulk form
    assert all(work.pending(DOWNLOAD, "key_a", job.id) for job in (*batch, single))
    connection.delete(QUEUE_KEY)
    members = take_members(work, DOWNLOAD, AHEAD, time.time())
    # Turns alternate between the keys as before (a tie to the earliest job: B's); A's first turn is its single job,
    # made after its whole batch; then A's batch, in order.
    assert members == [f"key_b:{theirs[0].id}", f"key_a:{single.id}", f"key_a:~{batch[0].id}",
                       f"key_b:{theirs[1].id}"]
    # Taken from the line in its bulk form; the rest of the batch waits in it.
    assert not work.pending(DOWNLOAD, "key_a", batch[0].id) and work.pending(DOWNLOAD, "key_a", batch[1].id)
    pipe = connection.pipeline(transaction=True)
    work.queued(DOWNLOAD, members, pipe)
    pipe.execute()
    assert take(work, DOWNLOAD, 5) == [job.id for job in batch[1:]]


def test_a_key_s_download_with_the_earliest_deadline_goes_first_and_another_key_keeps_its_turns(connection, work):
    jobs, now = JobStore(connection), time.time()
    plain = Job(id=new_job_id(), status="stored", key_id="key_a")
    late = Job(id=new_job_id(), status="stored", key_id="key_a", deadline=now + 600)
    soon = Job(id=new_job_id(), status="stored", key_id="key_a", deadline=now + 60)
    item = Job(id=new_job_id(), status="stored", key_id="key_a", batch_id="batch_1", deadline=now + 30)
    theirs = Job(id=new_job_id(), status="stored", key_id="key_b")
    for job in (plain, late, soon, item, theirs):
        jobs.create(job)
    effects = Effects(connection, KEYS, 3600, Tallies(connection).add)
    connection.rpush(QUEUE_KEY, *["busy"] * AHEAD)  # RQ's queue full: all wait in the line
    assert effects.apply([AddWork(DOWNLOAD, job.id) for job in (plain, late, soon, item, theirs)]) == {}
    assert all(work.pending(DOWNLOAD, job.key_id, job.id, job.deadline) for job in (plain, late, soon, item, theirs))
    connection.delete(QUEUE_KEY)
    taken = [member_job(m) for m in take_members(work, DOWNLOAD, 5, time.time())]
    # A's single jobs by deadline, the one without after them though made first, its batch item last; B keeps its turn.
    assert taken.index(theirs.id) <= 1
    assert [job for job in taken if job != theirs.id] == [soon.id, late.id, plain.id, item.id]
