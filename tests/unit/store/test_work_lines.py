"""The workers' work lines on a real Redis: tokens of one kind take the jobs of every key in turn, by the
slots' own rule (lua/fair_turns.lua), and a token keeps its job until it ends with no retry coming."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.enqueueing import THUMBNAIL_TASK, thumbnail_task
from fluxhook.store.effects import Effects
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import ADMIN_OWNER
from fluxhook.store.work_lines import DOWNLOAD, KINDS, NOTIFY, THUMBNAIL, WorkLines


@pytest.fixture()
def work(connection) -> WorkLines:
    return WorkLines(connection)


def add(work: WorkLines, kind: str, key_id: str | None, n: int = 1) -> list[str]:
    ids = [new_job_id() for _ in range(n)]
    pipe = work.connection.pipeline(transaction=True)
    for job_id in ids:
        work.add(kind, key_id, job_id, pipe)
    pipe.execute()
    return ids


def take_all(work: WorkLines, kind: str) -> list[str]:
    taken = []
    while (job_id := work.take(kind, f"token-{len(taken)}")) is not None:
        taken.append(job_id)
        work.done(kind, f"token-{len(taken) - 1}")
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
    a = set(add(work, NOTIFY, "key_a", 60))
    add(work, NOTIFY, "key_b", 60)
    taken = take_all(work, NOTIFY)[:40]
    assert Counter("a" if j in a else "b" for j in taken) == {"a": 30, "b": 10}


def test_the_kinds_have_lines_and_turns_of_their_own(work):
    a = add(work, DOWNLOAD, "key_a", 5)
    b = add(work, THUMBNAIL, "key_b", 5)
    assert take_all(work, THUMBNAIL) == b
    assert take_all(work, DOWNLOAD) == a


def test_a_bound_token_gets_its_job_again_until_it_is_done(work):
    first, second = add(work, DOWNLOAD, "key_a", 2)
    assert work.take(DOWNLOAD, "t1") == first
    # An RQ retry of t1, or t1 run again after its worker died mid-task: the same job, no new turn.
    assert work.take(DOWNLOAD, "t1") == first
    assert work.pending(DOWNLOAD, "key_a", first) == (False, "t1")
    assert work.take(DOWNLOAD, "t2") == second
    work.done(DOWNLOAD, "t1")
    assert work.pending(DOWNLOAD, "key_a", first) == (False, None)
    # Done: t1 (should RQ run it again) is an extra token now.
    assert work.take(DOWNLOAD, "t1") is None
    assert work.connection.hgetall(KEYS.work_bound(DOWNLOAD)) == {b"t:t2": f"key_a:{second}".encode(),
                                                                  f"m:key_a:{second}".encode(): b"t2"}


def test_an_extra_token_takes_nothing(work):
    assert work.take(DOWNLOAD, "extra") is None
    work.done(DOWNLOAD, "extra")
    assert work.connection.hlen(KEYS.work_bound(DOWNLOAD)) == 0


def test_a_job_added_twice_waits_once(work):
    [job_id] = add(work, DOWNLOAD, None)
    pipe = work.connection.pipeline(transaction=True)
    work.add(DOWNLOAD, None, job_id, pipe)
    pipe.execute()
    assert work.waiting(DOWNLOAD) == 1
    assert work.pending(DOWNLOAD, None, job_id) == (True, None)
    assert take_all(work, DOWNLOAD) == [job_id]


def test_a_job_queued_again_after_its_token_died_for_good_is_bound_to_the_new_one(work):
    [job_id] = add(work, DOWNLOAD, "key_a")
    assert work.take(DOWNLOAD, "dead") == job_id  # its worker died with no retries left: never done
    pipe = work.connection.pipeline(transaction=True)
    work.add(DOWNLOAD, "key_a", job_id, pipe)  # the sweep's repair
    pipe.execute()
    assert work.take(DOWNLOAD, "fresh") == job_id
    assert work.pending(DOWNLOAD, "key_a", job_id) == (False, "fresh")
    assert work.take(DOWNLOAD, "dead") is None


def test_an_unknown_kind_is_refused(work):
    with pytest.raises(ValueError):
        work.take("poster", "t")
    assert set(KINDS) == {"download", "draft_cache", "thumbnail", "notify"}


def test_a_token_and_its_job_are_queued_together_under_the_job_s_owner(connection, work):
    jobs = JobStore(connection)
    mine = Job(id=new_job_id(), status="stored", key_id="key_c")
    admins = Job(id=new_job_id(), status="stored")
    jobs.create(mine)
    jobs.create(admins)
    effects = Effects(connection, KEYS, 3600)
    effects.apply([thumbnail_task(connection, mine.id), thumbnail_task(connection, admins.id),
                   thumbnail_task(connection, "job_gone")])
    assert sorted(m.decode() for m in connection.zrange(KEYS.work_line(THUMBNAIL), 0, -1)) == sorted(
        [f"key_c:{mine.id}", f"{ADMIN_OWNER}:{admins.id}"])
    tasks = [connection.hget(f"rq:job:thumbnail-{j}", "description") for j in (mine.id, admins.id, "job_gone")]
    assert all(tasks)  # three tokens for two jobs: the extra one will find nothing
    assert THUMBNAIL_TASK.endswith("make_thumbnail")


def test_random_backlogs_match_a_plain_model(work, connection):
    # Start-time fair queueing with cost 1 / weight, ties to the earliest job: the slots' rule.
    rng = random.Random(7)
    weights = {"k1": 1, "k2": 2, "k3": 0.5}
    connection.hset(KEYS.share_weights, mapping=weights)
    passes, clock, lines = dict.fromkeys(weights, 0.0), 0.0, {k: [] for k in weights}
    for step in range(300):
        if rng.random() < 0.5:
            owner = rng.choice(list(weights))
            lines[owner] += add(work, DOWNLOAD, owner)
            continue
        got = work.take(DOWNLOAD, f"t{step}")
        waiting = [o for o in weights if lines[o]]
        if not waiting:
            assert got is None
            continue
        best = min(waiting, key=lambda o: (max(passes[o], clock), lines[o][0]))
        start = max(passes[best], clock)
        clock, passes[best] = start, start + 1 / weights[best]
        assert got == lines[best].pop(0)
        work.done(DOWNLOAD, f"t{step}")
