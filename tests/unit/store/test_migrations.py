"""The migration of what older releases kept (fluxhook/store/migrations.py) on a real Redis: old-shaped data in, today's
shape out (old lines, slots taken before accounts, tasks without an account, values kept in the clear, a thumbnail
task's leftovers), today's data left as it is, a second run one read, and two processes at once changing each thing
once."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import redis
from rq import Queue

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_ACCOUNT, DEFAULT_POOL, KONTEXT_MAX_POOL, Account
from fluxhook.core.job import EARLY_KEPT, Job, new_job_id
from fluxhook.core.signing import Sealer
from fluxhook.store.deliveries import IN_FLIGHT, Deliveries, Message, notify_member
from fluxhook.store.jobs import JobStore, Terms
from fluxhook.store.kept_callbacks import KeptCallbacks
from fluxhook.store.keys import KEYS
from fluxhook.store.migrations import SCHEMA_VERSION, Migrated, is_current, migrate
from fluxhook.store.owners import ADMIN_OWNER, CLOCK, estimate_field, member
from fluxhook.store.slots import Slots
from fluxhook.store.work_lines import DOWNLOAD
from helpers import commands_during
from notify_helpers import ended
from slot_helpers import _config, _queued, as_key, held_by, waiting_of

URL = "https://delivery.example/a.png?sig=secret-signature"
BODY = b'{"id": "task-early", "status": "Ready", "result": {"sample": "https://delivery.example/b.png?sig=x"}}'
ACCOUNTS = (Account("eu", "k1", "http://127.0.0.1:1", max_active=2),
            Account("us", "k2", "http://127.0.0.1:2", max_active=2))


def _everything(connection) -> dict:
    """Every key but the schema's, with its value."""
    read = {b"string": connection.get, b"hash": connection.hgetall, b"set": connection.smembers,
            b"zset": lambda key: connection.zrange(key, 0, -1, withscores=True),
            b"list": lambda key: connection.lrange(key, 0, -1)}
    return {key: read[connection.type(key)](key) for key in connection.scan_iter() if key != KEYS.schema.encode()}


def _task(store: JobStore, status: str = st.SUBMITTED, **fields) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=status, model="flux-2-pro", bfl_id=f"task-{new_job_id()}", created_at=now,
              updated_at=now, **fields)
    store.create(job)
    return job


def _held_before_accounts(connection, job: Job, pool: str = DEFAULT_POOL) -> float:
    """Make ``job`` hold a slot as a release before accounts and fair share kept it: the default account's slots,
    no account, no owner; returns when it took it."""
    taken = time.time() - 5
    connection.zadd(KEYS.slots(pool, DEFAULT_ACCOUNT), {job.id: taken})
    return taken


def test_what_older_releases_kept_comes_out_in_todays_shape(store, connection):
    config = _config(bfl_max_active=2)
    waiting, moved_on, gone, kontext = _queued(store), _queued(store), _queued(store), _queued(store, "flux-kontext-max")
    for job, pool in ((waiting, DEFAULT_POOL), (moved_on, DEFAULT_POOL), (gone, "flux-no-longer-limited"),
                      (kontext, KONTEXT_MAX_POOL)):
        connection.zadd(KEYS.legacy_line(pool), {job.id: job.created_at})
    store.transition(moved_on.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    holder = _queued(store)
    _held_before_accounts(connection, holder)
    polled, ready = _task(store), _task(store, st.READY, result_url=URL, draft_cache_source=URL + "&draft")
    expired = new_job_id()
    connection.zadd(KEYS.all_jobs, {expired: 0})  # an index entry whose record expired
    connection.set(KEYS.kept_for_job(waiting.id), BODY, ex=600)

    done = migrate(connection, config)

    assert done == Migrated(ran=True, lines=3, slots=1, holders=1, accounts=2, sealed=3)
    assert not list(connection.scan_iter(match=KEYS.legacy_line("*")))
    slots = Slots(connection, config)
    assert waiting_of(slots, None) == [waiting.id, gone.id, kontext.id] and slots.waiting(KONTEXT_MAX_POOL) == 1
    assert slots.account_of(holder.id) == DEFAULT_ACCOUNT and slots.holds(holder) and held_by(slots, None) == 1
    # Its account, owner and charge (none was charged then) in one entry; what older releases kept of them is gone.
    assert connection.hgetall(KEYS.slot_holders) == {holder.id.encode(): b"default|admin|0"}
    assert not connection.exists(KEYS.legacy_slot_accounts, KEYS.legacy_fair_owners, KEYS.legacy_fair_charges)
    assert slots.dispatch().jobs == [waiting.id]  # one slot was left: the old line's job is served
    sealed = JobStore(connection, sealer=Sealer(config.secret_keys))
    assert (sealed.get(polled.id).account, sealed.get(ready.id).account) == (DEFAULT_ACCOUNT, DEFAULT_ACCOUNT)
    assert sealed.get(ready.id).result_url == URL and sealed.get(ready.id).draft_cache_source == URL + "&draft"
    assert not any(b"secret-signature" in value for value in connection.hgetall(KEYS.job(ready.id)).values())
    assert sealed.transition(ready.id, st.STORED, terms=Terms(if_equal=("result_url", URL)))  # compared sealed
    assert 590 < connection.ttl(KEYS.kept_for_job(waiting.id)) <= 600
    assert connection.hget(KEYS.job(waiting.id), EARLY_KEPT) == b"1"  # its submission takes it
    assert KeptCallbacks(connection, Sealer(config.secret_keys)).take_for_job(waiting.id) == BODY
    assert connection.exists(KEYS.job(expired)) == 0  # never made again
    assert is_current(connection) and int(connection.get(KEYS.schema)) == SCHEMA_VERSION


def test_a_second_run_is_one_read_and_changes_nothing(store, connection, redis_server):
    config = _config()
    _held_before_accounts(connection, _queued(store))
    _task(store, st.READY, result_url=URL)
    assert migrate(connection, config) == Migrated(ran=True, slots=1, holders=1, accounts=1, sealed=1)
    before = _everything(connection)
    db = connection.connection_pool.connection_kwargs["db"]
    commands = commands_during(connection, db, lambda: migrate(connection, config))
    assert [c["command"] for c in commands if c["command"] != f"SELECT {db}"] == [f"GET {KEYS.schema}"]
    assert migrate(connection, config) == Migrated() and _everything(connection) == before
    assert migrate(connection, config, again=True) == Migrated(ran=True) and _everything(connection) == before


def test_todays_data_is_left_as_it_is(store, connection):
    config = _config()
    slots = Slots(connection, config)
    holding, in_line = _queued(store), _queued(store)
    assert slots.acquire(as_key(store, holding, "key_a"))
    assert not slots.acquire(as_key(store, in_line, "key_a"), send_here=False)
    sealed = JobStore(connection, sealer=Sealer(config.secret_keys))
    _task(sealed, st.READY, result_url=URL, account="us")
    KeptCallbacks(connection, Sealer(config.secret_keys)).keep_for_job(in_line.id, BODY)
    before = _everything(connection)
    assert migrate(connection, config) == Migrated(ran=True) and _everything(connection) == before


def test_a_slot_taken_before_accounts_goes_to_the_first_account_when_default_is_not_configured(store, connection):
    config = replace(_config(), named_accounts=ACCOUNTS)
    holder = _queued(store)
    taken = _held_before_accounts(connection, holder)
    moved = (KEYS.slots(DEFAULT_POOL, DEFAULT_ACCOUNT), KEYS.slots(DEFAULT_POOL, "eu"))
    connection.hset(KEYS.slot_counts, mapping=dict(zip(moved, (1, 0), strict=True)))  # as a count of the sets before the move
    assert migrate(connection, config).slots == 1
    slots = Slots(connection, config)
    assert connection.exists(KEYS.slots(DEFAULT_POOL, DEFAULT_ACCOUNT)) == 0
    assert connection.hmget(KEYS.slot_counts, list(moved)) == [None, None]  # made anew from the sets when next read
    assert connection.zscore(KEYS.slots(DEFAULT_POOL, "eu"), holder.id) == taken
    assert slots.account_of(holder.id) == "eu" and slots.holds(holder) and held_by(slots, None) == 1
    assert slots.requeue(holder)  # given back as today's slots are: its owner holds none, and it waits in line
    assert held_by(slots, None) == 0 and waiting_of(slots, None) == [holder.id]


def test_two_processes_at_once_migrate_each_thing_once(store, connection):
    config = _config()
    jobs = [_queued(store) for _ in range(40)]
    connection.zadd(KEYS.legacy_line(DEFAULT_POOL), {job.id: job.created_at for job in jobs})
    kwargs = {k: connection.connection_pool.connection_kwargs[k] for k in ("host", "port", "db")}
    done: list[Migrated] = []

    def process():
        done.append(migrate(redis.Redis(**kwargs), config))

    threads = [threading.Thread(target=process) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(d.ran for d in done) == [False, False, False, True]
    assert sum(d.lines for d in done) == 40 and connection.exists(KEYS.schema_lock) == 0
    assert sorted(connection.zrange(KEYS.line(DEFAULT_POOL), 0, -1)) == sorted(member(ADMIN_OWNER, j.id).encode()
                                                                             for j in jobs)


def test_a_lock_left_by_a_process_that_died_migrating_holds_the_others_only_until_it_lapses(store, connection):
    connection.zadd(KEYS.legacy_line(DEFAULT_POOL), {_queued(store).id: 1.0})
    connection.set(KEYS.schema_lock, "a process killed mid-migration", px=1500)
    started = time.monotonic()
    done = migrate(connection, _config())
    assert done.ran and done.lines == 1 and time.monotonic() - started >= 1.0
    assert connection.exists(KEYS.schema_lock) == 0 and is_current(connection)


def test_a_migration_longer_than_its_lock_keeps_it_and_another_process_waits_for_its_end(store, connection,
                                                                                        monkeypatch):
    from fluxhook.store import migrations

    monkeypatch.setattr(migrations, "MIGRATION_LOCK_SECONDS", 1)  # renewed every third of a second
    slots = migrations._Migration.old_slots
    monkeypatch.setattr(migrations._Migration, "old_slots", lambda self: time.sleep(2.5) or slots(self))
    connection.zadd(KEYS.legacy_line(DEFAULT_POOL), {_queued(store).id: 1.0})
    kwargs = {k: connection.connection_pool.connection_kwargs[k] for k in ("host", "port", "db")}
    # By caller, not by who ends first: the second may see the migration done before the first has returned.
    done: dict[str, Migrated] = {}
    first = threading.Thread(target=lambda: done.update(first=migrate(redis.Redis(**kwargs), _config())))
    first.start()
    wait_until(lambda: connection.exists(KEYS.schema_lock), timeout=10, message="the first process to take the lock")
    done["second"] = migrate(connection, _config())  # waits 2.5 s, past the lock's second, for the first to end
    first.join(timeout=30)
    assert (done["first"].ran, done["second"].ran) == (True, False) and done["first"].lines == 1


def test_a_task_tracked_once_for_everyone_becomes_its_owners_and_kept_bodies_become_marks(store, connection):
    config = _config()
    now = time.time()
    tracked = Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="task-old", key_id="key_v", created_at=now,
                  updated_at=now)
    connection.hset(KEYS.job(tracked.id), mapping={"id": tracked.id, "status": st.SUBMITTED, "bfl_id": "task-old",
                                                   "key_id": "key_v", "account": DEFAULT_ACCOUNT})
    connection.set(KEYS.bfl_task("task-old"), tracked.id, ex=600)  # as a release that tracked a task once kept it
    submitted = _queued(store)
    assert store.transition(submitted.id, st.SUBMITTED, bfl_id="task-submitted")
    connection.set(KEYS.legacy_kept_for_task(DEFAULT_ACCOUNT, "task-early"), BODY, ex=600)
    connection.zadd(KEYS.legacy_kept_of_account(DEFAULT_ACCOUNT), {"task-early": 1})

    assert migrate(connection, config, again=True).tracks == 2

    assert [j.id for j in store.trackers("task-old")] == [tracked.id]
    assert connection.hgetall(KEYS.bfl_trackers("task-old")) == {b"key_v": tracked.id.encode()}
    assert 590 < connection.ttl(KEYS.bfl_trackers("task-old")) <= 600
    assert store.get_by_bfl_id("task-old") is None and store.get_by_bfl_id("task-submitted").id == submitted.id
    assert KeptCallbacks(connection, Sealer(config.secret_keys)).was_reported(DEFAULT_ACCOUNT, "task-early")
    assert not list(connection.scan_iter(match=KEYS.legacy_kept_for_task("*", "*")))
    assert not list(connection.scan_iter(match=KEYS.legacy_kept_of_account("*")))


def test_a_job_an_older_release_kept_queued_awaiting_its_task_is_submitted_and_never_sent_again(store, connection):
    awaiting, placed = _queued(store), _queued(store)
    since = time.time() - 30
    connection.hset(KEYS.job(awaiting.id), "uncertain_at", since)  # as a release before 2 kept it, holding its slot

    assert migrate(connection, _config(), again=True).uncertain == 1

    moved = store.get(awaiting.id)
    assert (moved.status, moved.bfl_id, moved.uncertain_at, moved.submitted_at) == (st.SUBMITTED, None, since, since)
    assert since + 3599 <= store.due_at(awaiting.id) <= since + 3601  # failed at the task's hour if BFL never says
    assert store.get(placed.id).status == st.QUEUED  # a job that was merely queued is left as it is


def test_thumbnail_work_of_a_release_with_a_thumbnail_task_joins_the_download_line(store, connection):
    waiting, moving, in_rq = (_task(store, st.STORED, key_id=key) for key in ("key_a", None, "key_b"))
    # As a release that made thumbnails in a task of their own left them: in its line, being moved, in its RQ queue.
    connection.zadd(KEYS.work_line("thumbnail"), {member("key_a", waiting.id): 0})
    connection.hset(KEYS.legacy_work_moving("thumbnail"), member(ADMIN_OWNER, moving.id), time.time())
    queue = Queue("fluxhook-thumbnails", connection=connection)
    task = queue.enqueue_call("worker.thumbnail.make_thumbnail", (in_rq.id,), job_id=f"thumbnail-{in_rq.id}")

    assert migrate(connection, _config(), again=True).lines == 3

    line = {m.decode() for m in connection.zrange(KEYS.work_line(DOWNLOAD), 0, -1)}
    assert line == {member("key_a", waiting.id), member(ADMIN_OWNER, moving.id), member("key_b", in_rq.id)}
    assert not connection.exists(KEYS.work_line("thumbnail"), KEYS.legacy_work_moving("thumbnail"), queue.key, task.key)
    assert migrate(connection, _config(), again=True).lines == 0  # a second run finds nothing


def test_check_tasks_an_older_release_queued_in_rq_are_dropped_and_their_jobs_come_due_again(store, connection):
    job = _task(store)
    claim = time.time() + 90
    connection.zadd(KEYS.due, {job.id: claim})  # claimed by an older release's sweep, which queued its check in RQ
    queue = Queue("fluxhook-control", connection=connection)
    task = queue.enqueue_call("worker.sweep.check_job", (job.id, claim))

    assert migrate(connection, _config(), again=True).checks == 1

    assert not connection.exists(queue.key, task.key)
    # Due again once the older claim lapses, when today's sweep puts it in the check line.
    assert connection.zscore(KEYS.due, job.id) == pytest.approx(claim)
    assert migrate(connection, _config(), again=True).checks == 0


def test_messages_waiting_where_the_last_release_kept_them_are_due_for_todays_notifiers(store, connection):
    pipe = connection.pipeline(transaction=True)
    deliveries = Deliveries(connection)
    messages = [Message(id=f"msg_job_{n}", job_id=f"job_{n}", owner=owner, event="job.ended", kind="webhook",
                        host=f"h{n}.example.com:443", target="t") for n, owner in enumerate(("key_a", ADMIN_OWNER, "key_b"))]
    for message in messages:
        deliveries.add(message, None, pipe)
    pipe.execute()
    retry_at = time.time() + 300
    # As the last release left them: a retry's wait, its notify work line, and being moved from there into RQ.
    connection.zadd(KEYS.messages_due, {member("key_a", "msg_job_0"): retry_at})
    connection.zadd(KEYS.work_line("notify"), {member(ADMIN_OWNER, "msg_job_1"): 0, member("key_c", "msg_gone"): 0})
    connection.hset(KEYS.legacy_work_moving("notify"), member("key_b", "msg_job_2"), time.time())

    assert migrate(connection, _config(), again=True).messages == 3  # the one whose message is gone is dropped

    due = {m.decode(): score for m, score in connection.zrange(KEYS.notify_due, 0, -1, withscores=True)}
    assert set(due) == {m.member for m in messages}
    assert due[messages[0].member] == pytest.approx(retry_at) and due[messages[1].member] <= time.time()
    assert not connection.exists(KEYS.messages_due, KEYS.work_line("notify"), KEYS.legacy_work_moving("notify"))
    assert migrate(connection, _config(), again=True).messages == 0


def test_attempts_the_last_release_noted_in_flight_are_held_by_their_lease_as_todays(connection):
    """Its attempts in its own set become today's notes, each due at its lease (one a replay parked too), so that a take
    gives their room back once they lapsed; a lapsed note of ours whose message is not due (an older take ended it)
    has its room back from the migration, which no take would give."""
    deliveries, now = Deliveries(connection), time.time()
    mine = [notify_member("key_a", "h.example.com:443", f"msg_job_{n}") for n in range(2)]
    theirs = notify_member("key_b", "b.example.com:443", "msg_job_b")
    # As the last release left them: two attempts whose process died, the second sent again and parked behind its
    # receiver; and an attempt of ours lapsed whose message an older release's take took again and ended.
    connection.zadd(KEYS.legacy_notify_sending, {m: now - 5 for m in mine})
    connection.zadd(KEYS.notify_due, {mine[0]: now - 5})
    connection.zadd(KEYS.notify_parked, {f"r:key_a|h.example.com:443|{now - 30:017.3f}|{mine[1]}": 0})
    connection.hset(KEYS.notify_busy, mapping={"r:key_a|h.example.com:443": 2, "o:key_a": 2, "r:key_b|b.example.com:443": 1,
                                               "o:key_b": 1, f"{IN_FLIGHT}{theirs}": f"{now - 5:.3f}"})

    assert migrate(connection, _config(), again=True).attempts == 3

    assert not connection.exists(KEYS.legacy_notify_sending)
    assert connection.hmget(KEYS.notify_busy, "r:key_b|b.example.com:443", f"{IN_FLIGHT}{theirs}") == [None, None]
    assert {m: connection.zscore(KEYS.notify_due, m) for m in mine} == {m: pytest.approx(now - 5) for m in mine}
    assert sorted(deliveries.take(time.time(), 8).members) == mine  # their room back, then taken again
    assert connection.hget(KEYS.notify_busy, "r:key_a|h.example.com:443") == b"2"
    for m in mine:
        ended(deliveries, m)
    assert not connection.exists(KEYS.notify_busy) and migrate(connection, _config(), again=True).attempts == 0


def test_a_slot_held_as_the_last_release_kept_it_is_given_back_as_todays(store, connection):
    config = _config()
    job = as_key(store, _queued(store), "key_a")
    taken = time.time()
    connection.zadd(KEYS.slots(DEFAULT_POOL), {job.id: taken})
    connection.hset(KEYS.legacy_slot_accounts, job.id, DEFAULT_ACCOUNT)
    connection.hset(KEYS.legacy_fair_owners, mapping={job.id: "key_a", "job_in_line": "key_a"})
    connection.hset(KEYS.legacy_fair_charges, job.id, "10")
    connection.hset(KEYS.fair_held, "key_a", 1)
    connection.hset(KEYS.fair_passes, "key_a", "10")

    assert migrate(connection, config) == Migrated(ran=True, holders=1)
    assert connection.hgetall(KEYS.slot_holders) == {job.id.encode(): b"default|key_a|10"}
    assert not connection.exists(KEYS.legacy_slot_accounts, KEYS.legacy_fair_owners, KEYS.legacy_fair_charges)
    # Given back a moment later: the slot and its owner's count go, and its turn is charged the moment it held the
    # slot (at least a turn's least, 0.1 s; more on a loaded host) in place of the 10 s charged when it took it.
    assert store.transition(job.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    held = time.time() - taken
    assert not Slots(connection, config).holds(job) and not connection.hexists(KEYS.fair_held, "key_a")
    assert 0.1 - 1e-6 <= float(connection.hget(KEYS.fair_passes, "key_a")) <= max(0.1, held) + 1e-3
    assert not connection.exists(KEYS.slot_holders)


def test_a_clock_kept_in_a_key_of_its_own_moves_beside_its_passes_and_the_later_stays(store, connection):
    # The slots' clock as older releases kept it; a download's, with a later one this release wrote meanwhile.
    connection.set(KEYS.legacy_fair_clock, "42.5")
    connection.hset(KEYS.fair_passes, "key_a", "50")
    connection.set(KEYS.legacy_work_clock(DOWNLOAD), "3")
    connection.hset(KEYS.work_passes(DOWNLOAD), mapping={CLOCK: "7", "key_b": "8"})
    # A key's budget limit's turns to go alone.
    held = KEYS.key_budget_held("key_a")
    connection.set(KEYS.legacy_budget_clock(held), "4")
    connection.hset(KEYS.budget_turns(held), mapping={"key_a": "5", "~seq": "2"})

    assert migrate(connection, _config()) == Migrated(ran=True, clocks=3)
    assert connection.hgetall(KEYS.budget_turns(held)) == {b"key_a": b"5", b"~seq": b"2", CLOCK.encode(): b"4"}
    assert connection.hgetall(KEYS.fair_passes) == {b"key_a": b"50", CLOCK.encode(): b"42.5"}
    assert connection.hgetall(KEYS.work_passes(DOWNLOAD)) == {CLOCK.encode(): b"7", b"key_b": b"8"}
    assert not connection.exists(KEYS.legacy_fair_clock, KEYS.legacy_work_clock(DOWNLOAD), KEYS.legacy_budget_clock(held))
    # An owner back from idle starts at the clock moved, not at 0: its turn costs it 1 past 42.5.
    job = as_key(store, _queued(store), "key_c")
    assert Slots(connection, _config()).acquire(job)
    assert float(connection.hget(KEYS.fair_passes, "key_c")) > 42.5
    assert migrate(connection, _config(), again=True).clocks == 0  # a second run finds nothing


def test_a_clock_move_leaves_an_account_named_clock_alone_and_gives_new_turns_the_old_clocks_life(connection):
    # An account named 'clock': its reservations hash matches the pattern of an old budget clock (held + ':clock').
    account_held = KEYS.bfl_account_budget_held("clock")
    assert account_held == KEYS.legacy_budget_clock(KEYS.budget_held + ":account")
    connection.hset(account_held, "job_a", "1 2")
    # A key's limit whose turns had expired while its old clock still had an hour to live.
    held = KEYS.key_budget_held("key_a")
    connection.set(KEYS.legacy_budget_clock(held), "4", ex=3600)

    assert migrate(connection, _config()) == Migrated(ran=True, clocks=1)
    assert connection.hgetall(account_held) == {b"job_a": b"1 2"}
    assert connection.hgetall(KEYS.budget_turns(held)) == {CLOCK.encode(): b"4"}
    assert 3590 < connection.ttl(KEYS.budget_turns(held)) <= 3600
    assert connection.ttl(KEYS.fair_passes) == -2  # no slots' clock was there: nothing made


def test_the_estimates_of_slot_time_move_beside_the_passes_and_one_learned_since_stays(store, connection):
    # As older releases kept them: a hash of their own. Key_b's has been learned by this release since.
    default_slots, kontext_slots = KEYS.slots(DEFAULT_POOL), KEYS.slots(KONTEXT_MAX_POOL)
    connection.hset(KEYS.legacy_fair_estimates, mapping={f"{default_slots}|key_a": "36", f"{kontext_slots}|key_b": "4"})
    connection.hset(KEYS.fair_passes, mapping={"key_a": "50", estimate_field(kontext_slots, "key_b"): "9"})

    assert migrate(connection, _config()) == Migrated(ran=True, clocks=2)
    assert connection.hgetall(KEYS.fair_passes) == {b"key_a": b"50", estimate_field(default_slots, "key_a").encode(): b"36",
                                                    estimate_field(kontext_slots, "key_b").encode(): b"9"}
    assert not connection.exists(KEYS.legacy_fair_estimates)
    # Key_a's next turn is charged what it learned, not the first estimate (10 s): its pass moves 36 past 50.
    assert Slots(connection, _config()).acquire(as_key(store, _queued(store), "key_a"))
    assert float(connection.hget(KEYS.fair_passes, "key_a")) == pytest.approx(86)
    assert migrate(connection, _config(), again=True).clocks == 0  # a second run finds nothing
