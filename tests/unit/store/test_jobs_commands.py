"""What a job's steps cost Redis, command by command as MONITOR sees them: a new job's place in line and its
slot, a dispatch of empty lines, and the transitions of a job from queued to stored touch only the job's own pool,
line, slot and record fields, and read and write its record once each."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL, KONTEXT_MAX_POOL
from fluxhook.core.holds import MOVE_LEASE
from fluxhook.core.job import EARLY_KEPT, ENDED_DROPS, WATCHED_UNTIL
from fluxhook.store.effects import AddTimelineEntry, AddWork
from fluxhook.store.jobs import JobStore, Lock, Take, Terms
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import CLOCK, estimate_field
from fluxhook.store.queues import QUEUE_KEY
from fluxhook.store.slots import KnownCap, Slots
from fluxhook.store.timeline import TIMELINE_CAP
from fluxhook.store.work_lines import AHEAD, DOWNLOAD, KINDS
from helpers import commands_during
from slot_helpers import _config, _queued, as_key, in_flight

DB = 3  # the unit tests' slot database (tests/unit/conftest.py)
# A model with a pool of its own in the shipped catalog, beside flux-kontext-max.
VIDEO = "flux-3-video"


@pytest.fixture()
def slots(connection) -> Slots:
    return Slots(connection, _config(bfl_max_active=4, bfl_max_active_kontext_max=2))


@pytest.fixture()
def jobs(connection, slots) -> JobStore:
    return JobStore(connection, ttl=86400, pools=slots.pools)


def _commands(connection, action) -> list[str]:
    """The commands ``action`` sends, those its scripts run included (the EVALSHA and the EVAL left out)."""
    return [c["command"] for c in commands_during(connection, DB, action)
            if not c["command"].upper().startswith(("EVALSHA", "EVAL ", "SCRIPT", "SELECT", "ECHO"))]


def _naming(commands: list[str], word: str) -> list[str]:
    return [c for c in commands if word in c]


def _on(commands: list[str], key: str) -> list[str]:
    return [c for c in commands if c.split(" ")[1:2] == [key]]


def _names(commands: list[str]) -> list[str]:
    return [c.split(" ", 1)[0].upper() for c in commands]


def test_a_new_job_looks_at_another_pool_only_for_its_slot_counts_and_its_line(jobs, slots, connection):
    slots.acquire(_queued(jobs))  # the scripts loaded: what follows is one job's own
    job = _queued(jobs)
    commands = _commands(connection, lambda: slots.acquire(job))
    other = _naming(commands, KONTEXT_MAX_POOL)
    # Its held slots count toward its account's limit, read with its own pool's in one HMGET of the counts (no ZCARD),
    # a pause of it is asked with every other pause and cooldown, and whether a job waits in its line (which might go
    # first) with every line: nothing else of it.
    assert sorted(_names(other)) == ["EXISTS", "EXISTS", "HMGET"], other
    # None waits in any line: the job takes its slot without joining its line, which it would leave at once.
    assert _naming(commands, "fh:line:") == [f"EXISTS {KEYS.line(DEFAULT_POOL)} {KEYS.line(KONTEXT_MAX_POOL)}"]
    assert _naming(commands, KEYS.slot_counts) == [
        f"HMGET {KEYS.slot_counts} {KEYS.slots(DEFAULT_POOL)} {KEYS.slots(KONTEXT_MAX_POOL)}",
        f"HSET {KEYS.slot_counts} {KEYS.slots(DEFAULT_POOL)} 2"], commands
    # No count of slots; at most the due index's, as the job's send lease makes it due (sweep_index.lua).
    assert {c for c in commands if c.startswith("ZCARD")} <= {f"ZCARD {KEYS.due}"}, commands
    # No account cools down, no pool is paused and storage holds no send back: one EXISTS of every cooldown, pause and
    # storage's mark says so, and none is read.
    assert _naming(commands, "EXISTS fh:store:held") == [
        f"EXISTS {KEYS.store_held} {KEYS.cooling('default')} {KEYS.paused(DEFAULT_POOL)} "
        f"{KEYS.paused(KONTEXT_MAX_POOL)}"], commands
    assert not _naming(commands, "PTTL") and not _naming(commands, "HMGET fh:acct")
    assert not _naming(commands, f"GET {KEYS.store_held}")
    # Its owner's pass is read with the clock and its estimate of slot time (kept beside them), and the pass and the
    # clock written with its turn: one command each.
    assert _names(_naming(commands, "fh:fair:pass")) == ["HMGET", "HSET"], commands
    assert _naming(commands, "HMGET fh:fair:pass")[0].split(" ")[2:] == [
        "admin", CLOCK, estimate_field(KEYS.slots(DEFAULT_POOL), "admin")]
    assert not _naming(commands, KEYS.routes)  # its route is known: not read back
    assert len(commands) <= 22, commands


def test_a_job_that_waits_says_why_in_the_step_that_puts_it_in_line(jobs, slots, connection):
    for _ in range(4):
        assert slots.acquire(_queued(jobs)) == "default"  # every slot of BFL_MAX_ACTIVE taken
    job = _queued(jobs)
    joined = []
    commands = _commands(connection, lambda: joined.append(slots.join(job)))
    # What holds it back is what a look of the line says, read from the reads its own turn made: one reading of
    # each account's cooldown and of its pool's pause, no second look of its place.
    assert joined[0].account is None and joined[0].line == slots.line_states([(DEFAULT_POOL, "admin", None)])[0]
    assert joined[0].line.pool_held == joined[0].line.total_limit == 4
    assert len(_naming(commands, "cooling")) == 1 and len(_naming(commands, "paused")) == 1
    assert not _naming(commands, KEYS.slot_holders)


def test_a_new_job_whose_caller_read_its_key_s_max_active_asks_redis_for_none_and_is_held_to_it(jobs, slots,
                                                                                                  connection):
    slots.set_share("key_a", 1, 1)  # as the key's own record says (store/app_keys.py keeps both)
    first = as_key(jobs, _queued(jobs), "key_a")
    commands = _commands(connection, lambda: slots.join(first, known_cap=KnownCap(1)))
    assert not _naming(commands, KEYS.share_max_active), commands
    # Held to it: the key's one slot is taken, so its next job waits for it, while the admin's (no limit) goes.
    assert slots.account_of(first.id) == "default"
    second = as_key(jobs, _queued(jobs), "key_a")
    commands = _commands(connection, lambda: slots.join(second, known_cap=KnownCap(1)))
    assert slots.account_of(second.id) is None and not _naming(commands, KEYS.share_max_active), commands
    assert slots.join(_queued(jobs), known_cap=KnownCap(None)).account == "default"


def test_a_new_job_whose_caller_read_its_key_s_weight_asks_redis_for_none_and_its_turn_is_charged_by_it(jobs, slots,
                                                                                                          connection):
    slots.set_share("key_w", 4, None)
    job = as_key(jobs, _queued(jobs), "key_w")
    commands = _commands(connection, lambda: slots.join(job, known_cap=KnownCap(None, 4.0)))
    assert slots.account_of(job.id) == "default"
    assert not _naming(commands, KEYS.share_weights) and not _naming(commands, KEYS.share_max_active), commands
    # The holder's entry keeps the weight its turn was charged by, as when the weight is read from Redis.
    entry = connection.hget(KEYS.slot_holders, job.id).decode().split("|")
    assert float(entry[-1]) == 4.0, entry


def test_a_dispatch_of_empty_lines_reads_no_room_and_no_turn(slots, connection):
    commands = _commands(connection, lambda: slots.dispatch(free_lapsed=False))
    assert _names(commands) == ["ZRANGEBYLEX"] * len(slots.pools), commands
    # Per pool, its line's first owner; which also says no line holds a job. Its look for slots past their lease, once
    # every few seconds, counts each pool's slots anew: one write for all.
    commands = _commands(connection, slots.dispatch)
    assert sorted(_names(commands)) == sorted(["ZRANGEBYSCORE", "ZCARD", "ZRANGEBYLEX"] * len(slots.pools) + ["HSET"])


def test_a_job_that_joins_a_full_pool_reads_no_line(jobs, slots, connection):
    for _ in range(4):
        assert slots.acquire(_queued(jobs)) == "default"
    waiting = _queued(jobs)
    commands = _commands(connection, lambda: slots.join(waiting))
    # Its own pool has no room: no turn can be its, so no line's first owner (nor the turns) is read.
    assert _names(_naming(commands, "fh:line:")) == ["ZADD"], commands
    assert not _naming(commands, "fh:fair:pass")
    # The slots held, every pool's in one read, and not the slots its owner holds: it has no max_active of its own.
    assert _naming(commands, KEYS.slot_counts) == [
        f"HMGET {KEYS.slot_counts} {KEYS.slots(DEFAULT_POOL)} {KEYS.slots(KONTEXT_MAX_POOL)}"], commands
    # No count of slots; at most the due index's, as the job's send lease makes it due (sweep_index.lua).
    assert {c for c in commands if c.startswith("ZCARD")} <= {f"ZCARD {KEYS.due}"}, commands
    assert not _naming(commands, KEYS.fair_held)


def test_a_dispatch_that_gives_the_last_job_in_line_says_none_waits_without_another_look(jobs, slots, connection):
    holders = [_queued(jobs) for _ in range(4)]
    for job in holders:
        assert slots.acquire(job) == "default"
    waiting = _queued(jobs)
    assert slots.join(waiting).account is None
    assert jobs.transition(holders[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    given = []
    commands = _commands(connection, lambda: given.append(slots.dispatch(free_lapsed=False)))
    assert given[0].jobs == [waiting.id] and not given[0].waiting
    assert not _naming(commands, "EXISTS fh:line")  # the lines' heads, read for the turn, say it


def test_a_dispatch_that_gives_one_of_an_owner_s_jobs_knows_its_next_from_the_one_look_at_its_line(
        jobs, slots, connection):
    holders = [_queued(jobs) for _ in range(4)]
    for job in holders:
        assert slots.acquire(job) == "default"
    waiting = [_queued(jobs) for _ in range(2)]
    for job in waiting:
        slots.join(job)
    assert jobs.transition(holders[0].id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    given = []
    commands = _commands(connection, lambda: given.append(slots.dispatch(free_lapsed=False)))
    assert given[0].jobs == [waiting[0].id] and given[0].waiting
    # The owner's first two jobs in one look, then the next owner's range (none): the job left waiting is known, not
    # looked up again after the turn.
    assert _names(_naming(commands, f" {KEYS.line(DEFAULT_POOL)} ")) == ["ZRANGEBYLEX", "ZRANGEBYLEX", "ZREM"], commands


def test_the_lines_are_asked_at_once_whether_one_holds_a_job_and_one_that_does_is_read_as_before(connection):
    config = replace(_config(bfl_max_active=4), bfl_model_limits=((KONTEXT_MAX_POOL, 2), (VIDEO, 1)))
    slots = Slots(connection, config)
    jobs = JobStore(connection, ttl=86400, pools=slots.pools)
    assert slots.pools == (DEFAULT_POOL, KONTEXT_MAX_POOL, VIDEO)
    job = _queued(jobs)
    commands = _commands(connection, lambda: slots.acquire(job))
    assert _naming(commands, "fh:line:") == [
        f"EXISTS {KEYS.line(DEFAULT_POOL)} {KEYS.line(KONTEXT_MAX_POOL)} {KEYS.line(VIDEO)}"], commands
    assert slots.account_of(job.id) == "default"
    # A video job waits for the video pool's one slot: a new job joins its line and its turn is read as it always was,
    # the later pools' lines asked at once whether one holds a job.
    assert slots.acquire(_queued(jobs, "flux-3-video")) == "default"
    waiting = _queued(jobs, "flux-3-video")
    assert slots.acquire(waiting) is None
    job = _queued(jobs)
    commands = _commands(connection, lambda: slots.acquire(job))
    assert f"EXISTS {KEYS.line(KONTEXT_MAX_POOL)} {KEYS.line(VIDEO)}" in commands
    assert _names(_on(commands, KEYS.line(DEFAULT_POOL))) == ["EXISTS", "ZADD", "ZRANGEBYLEX", "ZREM"], commands
    assert slots.account_of(job.id) == "default" and slots.account_of(waiting.id) is None
    assert connection.zcard(KEYS.line(VIDEO)) == 1 and connection.zcard(KEYS.line(DEFAULT_POOL)) == 0


def test_a_sent_job_leaves_only_its_own_line_and_reads_and_writes_its_record_once(jobs, slots, connection):
    job = _queued(jobs)
    assert slots.acquire(job) == "default"
    lock = Lock(KEYS.submit_lock(job.id), "claim-1", 90)
    connection.set(lock.key, lock.value)
    connection.set(KEYS.kept_for_job(job.id), b"early body")
    connection.hset(KEYS.job(job.id), EARLY_KEPT, "1")  # as KeptCallbacks.keep_for_job says it
    connection.hset(KEYS.job(job.id), WATCHED_UNTIL, str(time.time() + 60))  # as a look marks it (store/watching.py)
    now = time.time()
    changes = []
    commands = _commands(connection, lambda: changes.append(jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-1", input=None, due=now + 30,
        due_if_watched=now + 3, terms=Terms(unlock=lock, take=Take(KEYS.kept_for_job(job.id), EARLY_KEPT)),
        effects=[AddTimelineEntry(job.id, "sent")])))
    record = _on(commands, KEYS.job(job.id))
    # Its task's index lives as long as the record was made to: read with it, not asked of Redis (no TTL).
    assert _names(record) == ["HMGET", "HSET", "HDEL"], record  # input dropped: gone, not written empty
    assert 86390 < connection.ttl(KEYS.bfl_task("task-1")) <= 86400
    assert not _naming(commands, "fh:fair:")  # no owner read elsewhere
    # No wait was recorded: none named. The body kept goes, and with it the flag that said so.
    assert _naming(commands, "HDEL")[0].split(" ")[2:] == ["input", EARLY_KEPT]
    # It holds a slot, so it is in no line: no line is touched.
    assert _names(_on(commands, KEYS.slot_holders)) == ["HGET"]
    assert not _naming(commands, "ZREM fh:line:") and not _naming(commands, "ZREM fh:aside")
    change = changes[0]
    assert change.moved and change.taken == b"early body" and not connection.exists(KEYS.kept_for_job(job.id))
    assert not connection.exists(lock.key)  # freed with the move
    assert jobs.due_at(job.id) == pytest.approx(now + 3, abs=0.01)  # watched: polled at the watched pace
    assert connection.ttl(KEYS.timeline(job.id)) > 86000
    assert jobs.get(job.id).input is None and not connection.hexists(KEYS.job(job.id), "input")


def test_a_job_a_dispatch_gave_its_slot_is_sent_without_a_look_for_its_place(jobs, slots, connection):
    job = _queued(jobs)
    assert slots.acquire(job) == "default"
    commands = _commands(connection, lambda: jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-5", terms=Terms(out_of_line=True)))
    # The caller knows it is in no line (the dispatch took it out): neither its slot's entry nor a line is asked.
    assert not _naming(commands, KEYS.slot_holders) and not _naming(commands, "fh:line:"), commands
    assert not _naming(commands, KEYS.aside)
    assert jobs.get(job.id).status == st.SUBMITTED and slots.account_of(job.id) == "default"


def test_a_sent_job_read_back_is_its_one_read_of_the_record_with_the_step_s_writes(jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    changes = []
    commands = _commands(connection, lambda: changes.append(jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-6", bfl_status="Pending", input=None,
        terms=Terms(out_of_line=True, read_back=True, count="polls"))))
    # Read once, all of it, before the writes; not read again after them.
    assert _names(_on(commands, KEYS.job(job.id))) == ["HGETALL", "HSET", "HDEL"], commands
    assert changes[0].record == jobs.get(job.id)
    assert changes[0].record.status == st.SUBMITTED and changes[0].record.bfl_id == "task-6"
    assert changes[0].record.input is None and changes[0].record.polls == 1


def test_a_sent_job_with_no_body_kept_for_it_looks_for_none(jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    connection.set(KEYS.kept_for_job(job.id), b"kept as the step runs")  # its flag not written yet
    take = Take(KEYS.kept_for_job(job.id), EARLY_KEPT)
    changes = []
    commands = _commands(connection, lambda: changes.append(jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-3", terms=Terms(take=take))))
    assert changes[0].moved and changes[0].taken is None
    assert not _naming(commands, KEYS.kept_for_job(job.id))  # no command a job of the many without one
    assert connection.get(KEYS.kept_for_job(job.id)) == b"kept as the step runs"  # its keeper's, who reads the job


def test_a_task_index_whose_record_life_reads_as_over_here_lives_as_long_as_the_record(jobs, connection):
    # The record was made by a process whose clock was two days behind this one's: by this clock its life (a day) is
    # over, while Redis still keeps it. Its index lives as long as the record does, not for ever.
    job = _queued(jobs)
    connection.hset(KEYS.job(job.id), "created_at", str(time.time() - 2 * 86400))
    assert jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-skewed")
    record_ttl = connection.ttl(KEYS.job(job.id))
    assert 0 < record_ttl and record_ttl - 2 <= connection.ttl(KEYS.bfl_task("task-skewed")) <= record_ttl


def test_a_lock_is_freed_with_the_move_it_guarded_unread_and_another_s_is_left_by_a_step_that_moves_nothing(
        jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    mine = Terms(unlock=Lock(KEYS.submit_lock(job.id), "mine", 90))
    connection.set(KEYS.submit_lock(job.id), "another")
    jobs.transition(job.id, st.QUEUED, only_from=(st.QUEUED,), terms=mine)  # the same status: no move
    assert connection.get(KEYS.submit_lock(job.id)) == b"another"
    commands = _commands(connection, lambda: jobs.transition(job.id, st.SUBMITTED, bfl_id="task-2", terms=mine))
    # Once the job left the status the lock guarded, the lock is moot: freed without a look at whose it is.
    assert connection.get(KEYS.submit_lock(job.id)) is None
    assert _names(_naming(commands, KEYS.submit_lock(job.id))) == ["DEL"], commands


def test_ready_gives_back_its_own_slot_and_stored_looks_for_none(jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    jobs.transition(job.id, st.SUBMITTED, bfl_id="task-3")
    connection.rpush(QUEUE_KEY, *["busy"] * AHEAD)  # RQ's queue full: its download waits in its line
    ready = _commands(connection, lambda: jobs.transition(job.id, st.READY, result_url="https://x/" + "u" * 200,
                                                          due=time.time() + 15, effects=[AddWork(DOWNLOAD, job.id)]))
    # Its slot goes with one ZREM: when it took it and its owner's weight are its holder's entry's, not read again.
    assert _on(ready, KEYS.slots(DEFAULT_POOL)) == [f"ZREM {KEYS.slots(DEFAULT_POOL)} {job.id}"]
    assert not _naming(ready, "ZSCORE") and not _naming(ready, KEYS.share_weights)
    # Its download joins the work line with its owner from the transition's one read of the record.
    assert _names(_on(ready, KEYS.job(job.id))).count("HMGET") == 1
    assert _naming(ready, "ZADD fh:work:") == [f"ZADD {KEYS.work_line(DOWNLOAD)} NX 0 admin:{job.id}"]
    assert len(_naming(ready, f"ZADD {KEYS.due} ")) == 1  # its own due time: no lease holds it
    # Another pool is named once: by the one EXISTS that asks whether a job waits in any line for the slot freed. None
    # does, so no dispatcher is woken.
    assert _names(_naming(ready, KONTEXT_MAX_POOL)) == ["EXISTS"]
    assert not _naming(ready, f"LPUSH {KEYS.slot_freed}")
    assert in_flight(slots, DEFAULT_POOL) == 0 and slots.account_of(job.id) is None
    # Its slot's account, owner and charge: one entry, read once and dropped once; no other hash of the job's.
    assert _names(_on(ready, KEYS.slot_holders)) == ["HGET", "HDEL"]
    # Its owner's pass and its estimate of slot time (which the task's time at BFL teaches), kept side by side: read in
    # one command, written in one.
    assert _names(_on(ready, KEYS.fair_passes)) == ["HMGET", "HSET"], ready
    assert not _naming(ready, "fh:fair:owner") and not _naming(ready, "fh:fair:charge")


def test_a_slot_held_by_an_entry_of_an_older_release_is_given_back_by_its_score(jobs, slots, connection):
    job = _queued(jobs)
    taken = time.time() - 30
    assert slots.acquire(job) == "default"
    connection.zadd(KEYS.slots(DEFAULT_POOL), {job.id: taken})
    connection.hset(KEYS.slot_holders, job.id, "default|admin|10")  # as written before schema 5: no time, no weight
    jobs.transition(job.id, st.SUBMITTED, bfl_id="task-old")
    passes_before = float(connection.hget(KEYS.fair_passes, "admin"))
    ready = _commands(connection, lambda: jobs.transition(job.id, st.READY, result_url="https://x/a"))
    assert _names(_on(ready, KEYS.slots(DEFAULT_POOL))) == ["ZSCORE", "ZREM"]
    assert _names(_naming(ready, KEYS.share_weights)) == ["HGET"]
    assert in_flight(slots, DEFAULT_POOL) == 0
    # Charged the 30 s it held the slot in place of the 10 s it was charged as it took it.
    assert float(connection.hget(KEYS.fair_passes, "admin")) == pytest.approx(passes_before + 20, abs=1)

    stored = _commands(connection, lambda: jobs.transition(job.id, st.STORED, storage_key=f"{job.id}.png"))
    assert not _naming(stored, "slot") and not _naming(stored, "fh:line:")  # it holds neither since ready
    assert not _naming(stored, "fh:fair:")  # nor has it anything of the fair share's left to drop
    assert not _naming(stored, KEYS.routes) and not _naming(stored, KEYS.deadlines)  # it had neither
    # Made anew from the step's one read, without what it keeps no longer, living as long as it was made to.
    assert _names(_on(stored, KEYS.job(job.id))) == ["HGETALL", "DEL", "HSET", "PEXPIREAT"], stored


def test_an_ended_record_keeps_none_of_what_only_a_running_job_needs(jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    jobs.transition(job.id, st.SUBMITTED, bfl_id="task-4", polling_url="https://api.bfl.ai/v1/get_result?id=task-4",
                    usage_day="2026-01-01", counted_credits=3, counted_spend=3)
    jobs.transition(job.id, st.READY, result_url="https://delivery-eu1.bfl.ai/r/" + "y" * 200, ready_proven=True)
    # Watched as it ran, and flagged by a callback body kept for it (one put back after its applying failed).
    connection.hset(KEYS.job(job.id), mapping={WATCHED_UNTIL: str(time.time() + 10), EARLY_KEPT: "1"})
    assert connection.object("encoding", KEYS.job(job.id)) == b"hashtable"  # the long URL outgrew the compact one
    image = {"content_type": "image/jpeg", "size": 51470, "sha256": "a" * 64, "width": 1024, "height": 1024}
    stored = _commands(connection, lambda: jobs.transition(job.id, st.STORED, image=image,
                                                           storage_key=f"{job.id}.jpg"))
    # Written again compact, to end where it was made to (created_at and its life): its TTL is not read.
    assert _names(_on(stored, KEYS.job(job.id))) == ["HGETALL", "DEL", "HSET", "PEXPIREAT"], stored
    kept = {name.decode() for name in connection.hkeys(KEYS.job(job.id))}
    assert not kept & set(ENDED_DROPS), kept & set(ENDED_DROPS)
    assert not kept & {WATCHED_UNTIL, EARLY_KEPT}  # named here too: the list alone would prove only itself
    assert connection.object("encoding", KEYS.job(job.id)) in (b"listpack", b"ziplist")
    assert connection.memory_usage(KEYS.job(job.id), samples=0) <= 1024
    assert 86000 < connection.ttl(KEYS.job(job.id)) <= 86400
    assert jobs.get(job.id).image == image


def test_an_ended_record_whose_life_reads_as_over_here_keeps_the_life_redis_gives_it(jobs, connection):
    # Made by a process whose clock was two days behind: its own life (a day) reads as over by this clock, so the
    # record, made anew as it ends, keeps the TTL Redis had for it (read in the step), not none.
    job = _queued(jobs)
    connection.hset(KEYS.job(job.id), "created_at", str(time.time() - 2 * 86400))
    connection.expire(KEYS.job(job.id), 5000)
    stored = _commands(connection, lambda: jobs.transition(job.id, st.CANCELED, error={"code": "x", "message": "y"}))
    assert _names(_on(stored, KEYS.job(job.id))) == ["HGETALL", "PTTL", "DEL", "HSET", "PEXPIRE"], stored
    assert 4990 < connection.ttl(KEYS.job(job.id)) <= 5000
    assert jobs.get(job.id).status == st.CANCELED and jobs.get(job.id).error == {"code": "x", "message": "y"}


def test_a_timeline_is_trimmed_past_its_cap_and_given_its_life_once(jobs, connection):
    job = _queued(jobs)
    first = _commands(connection, lambda: jobs.update(job.id, effects=[AddTimelineEntry(job.id, "0")]))
    assert _names(_on(first, KEYS.timeline(job.id))) == ["LPUSH", "EXPIRE"]
    for n in range(1, TIMELINE_CAP):
        jobs.update(job.id, effects=[AddTimelineEntry(job.id, str(n))])
    connection.expire(KEYS.timeline(job.id), 500)
    full = _commands(connection, lambda: jobs.update(job.id, effects=[AddTimelineEntry(job.id, "last")]))
    assert _names(_on(full, KEYS.timeline(job.id))) == ["LPUSH", "LTRIM"]  # one past the cap: trimmed
    entries = connection.lrange(KEYS.timeline(job.id), 0, -1)
    assert len(entries) == TIMELINE_CAP and entries[0] == b"last" and entries[-1] == b"1"
    assert 0 < connection.ttl(KEYS.timeline(job.id)) <= 500  # its life was not renewed


def test_work_whose_turn_is_now_is_taken_at_once_as_the_feeder_would_take_it(jobs, slots, connection):
    job = _queued(jobs)
    slots.acquire(job)
    jobs.transition(job.id, st.SUBMITTED, bfl_id="task-4")
    moved = []
    ready = _commands(connection, lambda: moved.append(jobs.transition(job.id, st.READY, due=time.time() + 60,
                                                                       effects=[AddWork(DOWNLOAD, job.id)])))
    assert moved[0].handed == {DOWNLOAD: [f"admin:{job.id}"]}
    # One EXISTS of every line (none holds work) and RQ's queue counted; then the take: the job held by its lease in
    # the due index (nothing else notes it), its owner's turn charged (its pass and the clock read and written once,
    # its weight read). No line, no wake-up.
    exists, *charge = _naming(ready, "fh:work:")
    assert exists == "EXISTS " + " ".join(KEYS.work_line(kind) for kind in KINDS)
    # Held due by its lease alone: the ready job's own due time, which the lease would write again, is not written.
    [due] = _naming(ready, f"ZADD {KEYS.due} ")
    assert due.endswith(job.id) and float(due.split(" ")[2]) == pytest.approx(time.time() + MOVE_LEASE, abs=5)
    assert charge == [f"HMGET {KEYS.work_passes(DOWNLOAD)} admin ~clock", f"HSET {KEYS.work_passes(DOWNLOAD)} admin 1 ~clock 0"]
    assert _naming(ready, QUEUE_KEY) == [f"LLEN {QUEUE_KEY}"]
    assert not _naming(ready, "ZADD fh:work:") and not _naming(ready, KEYS.work_added)


def test_work_is_not_added_by_an_update_whose_answer_could_not_hand_it_back(jobs, connection):
    job = _queued(jobs)
    with pytest.raises(TypeError, match="AddWork"):
        jobs.update(job.id, effects=[AddWork(DOWNLOAD, job.id)])
    assert not connection.exists(KEYS.due) and not connection.exists(KEYS.work_line(DOWNLOAD))
