"""Job records on a real Redis: atomic transitions, terminal statuses that never move, indexes; and short-lived locks
taken on their own (``Locks``): one holder at a time, each lapsing by itself."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter
from fluxhook.store.effects import AddTimelineEntry
from fluxhook.store.jobs import JobStore, Lock, Locks, Terms
from fluxhook.store.keys import KEYS


@pytest.fixture()
def store(redis_server):
    # Database 1: the session's web and worker processes use database 0.
    connection = redis.Redis.from_url(redis_server.url.replace("/0", "/1"))
    connection.flushdb()
    yield JobStore(connection)
    connection.flushdb()


def _job(store: JobStore, status: str = st.SUBMITTED, bfl_id: str | None = None) -> Job:
    now = time.time()
    job, created = store.create(Job(id=new_job_id(now), status=status, bfl_id=bfl_id or new_job_id(),
                                    created_at=now, updated_at=now))
    assert created
    return job


def test_terminal_status_never_changes(store):
    job = _job(store)
    assert store.transition(job.id, st.READY, result_url="https://x/1.png")
    assert store.transition(job.id, st.STORED, image={"sha256": "a"})
    for late in (st.READY, st.FAILED, st.EXPIRED, st.SUBMITTED, st.STORED):
        assert not store.transition(job.id, late, error={"code": "late", "message": "late"})
    assert not store.update(job.id, bfl_status="Pending")
    again = store.get(job.id)
    assert again.status == st.STORED and again.error is None and again.bfl_status is None
    assert again.completed_at is not None


def test_concurrent_transitions_have_exactly_one_winner(store):
    job = _job(store)
    store.transition(job.id, st.READY)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def race(target: str):
        barrier.wait()
        results.append(store.transition(job.id, target))

    threads = [threading.Thread(target=race, args=((st.STORED, st.FAILED, st.EXPIRED)[n % 3],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [bool(r) for r in results].count(True) == 1
    final = store.get(job.id).status
    assert final in st.TERMINAL
    # The status indexes agree with the record: the job is listed under its final status only.
    for name in st.STATUSES:
        listed = [j.id for j in store.list(JobFilter(status=name), limit=100)[0]]
        assert (job.id in listed) == (name == final)


def test_a_tracked_bfl_id_maps_to_one_job_per_owner(store):
    first = _job(store, bfl_id="task-1")
    duplicate, created = store.create(Job(id=new_job_id(), status=st.SUBMITTED, bfl_id="task-1"))
    assert not created and duplicate.id == first.id
    another, created = store.create(Job(id=new_job_id(), status=st.SUBMITTED, bfl_id="task-1", key_id="key_other"))
    assert created and another.id != first.id
    assert sorted(j.id for j in store.trackers("task-1")) == sorted([first.id, another.id])
    assert store.get_by_bfl_id("task-1") is None  # the index of the jobs fluxhook submitted
    assert store.delete(first.id) == ""
    assert [j.id for j in store.trackers("task-1")] == [another.id]


def test_a_new_job_replaces_one_its_tasks_index_still_names_once_that_job_is_gone(store):
    gone = _job(store, bfl_id="task-gone")
    store.connection.delete(store.keys.job(gone.id))  # its record went; the task's index outlived it
    made: list[tuple[Job, bool]] = []
    # Were the gone job not replaced, create would ask again for ever: a thread, so the test fails instead.
    thread = threading.Thread(target=lambda: made.append(
        store.create(Job(id=new_job_id(), status=st.SUBMITTED, bfl_id="task-gone"))), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert made, "create kept finding the gone job"
    job, created = made[0]
    assert created and job.id != gone.id
    assert [j.id for j in store.trackers("task-gone")] == [job.id]


def test_bfl_id_set_by_a_transition_is_indexed(store):
    job, _ = store.create(Job(id=new_job_id(), status=st.QUEUED))
    assert store.transition(job.id, st.SUBMITTED, bfl_id="task-2")
    assert store.get_by_bfl_id("task-2").id == job.id


def test_counting_a_deleted_job_does_not_recreate_it(store):
    job = _job(store)
    assert store.count(job.id, "webhooks") == 1
    assert store.delete(job.id) == ""
    assert store.count(job.id, "webhooks") == -1
    assert store.get(job.id) is None
    assert not store.transition(job.id, st.READY)
    assert store.get(job.id) is None
    assert store.get_by_bfl_id(job.bfl_id) is None and store.trackers(job.bfl_id) == []


def test_listing_pages_through_every_job_once(store):
    made = [_job(store).id for _ in range(7)]
    seen, cursor = [], None
    while True:
        page, cursor = store.list(limit=3, cursor=cursor)
        seen += [j.id for j in page]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)


def test_a_repeated_ready_requeues_a_download_lost_between_transition_and_enqueue(make_services):
    from fluxhook.bfl.reports import BFLReport
    from fluxhook.core.outcomes import ReportOutcome
    from fluxhook.lifecycle.steps.applying import Origin, apply_report

    svc = make_services(2)
    svc.redis.flushdb()
    job = _job(svc.jobs, bfl_id="task-lost")
    # The web process died after recording ready and before queueing the download:
    assert svc.jobs.transition(job.id, st.READY, result_url="https://delivery.eu.bfl.ai/a.png")
    assert svc.queue.count == 0
    ready = BFLReport(bfl_id="task-lost", status=st.BFL_READY, sample_url="https://delivery.eu.bfl.ai/a.png")
    again = Origin("webhook", confirmed=False)
    assert apply_report(svc, job.id, ready, again, job=svc.jobs.get(job.id)) == ReportOutcome.DOWNLOAD_QUEUED
    assert apply_report(svc, job.id, ready, again, job=svc.jobs.get(job.id)) == ReportOutcome.DUPLICATE
    from fluxhook.store.work_lines import DOWNLOADS
    # Queued once: taken at once into RQ (no line held work), or in a download line for a feeder.
    assert svc.queue.count + sum(svc.store.work.waiting(line) for line in DOWNLOADS) == 1
    svc.redis.flushdb()


def test_ids_made_in_the_same_millisecond_still_sort_in_order():
    ids = [new_job_id(1_700_000_000.0) for _ in range(500)]
    assert ids == sorted(ids) and len(set(ids)) == 500


def test_a_stored_record_drops_bfls_urls_and_stays_compact(redis_server):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", "/1"))
    connection.flushdb()
    store = JobStore(connection, ttl=86400)
    now = time.time()
    job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="compact-1", created_at=now,
                              updated_at=now, polling_url="https://api.bfl.ai/v1/get_result?id=" + "x" * 60))
    assert store.transition(job.id, st.READY, result_url="https://delivery-eu1.bfl.ai/r/" + "y" * 120)
    image = {"content_type": "image/png", "size": 1456789, "sha256": "a" * 64, "width": 1024, "height": 768}
    assert store.transition(job.id, st.STORED, image=image, storage_key=f"{job.id}.png")

    stored = store.get(job.id)
    assert stored.image == image and stored.result_url is None and stored.polling_url is None
    assert connection.object("encoding", KEYS.job(job.id)) in (b"listpack", b"ziplist")
    assert connection.memory_usage(KEYS.job(job.id), samples=0) <= 2048
    assert 86000 < connection.ttl(KEYS.job(job.id)) <= 86400
    connection.flushdb()


def test_a_job_that_ends_with_a_long_error_keeps_a_compact_record_under_a_kib(store):
    job = _job(store, status=st.QUEUED)
    error = {"code": "deadline_exceeded", "message": "its deadline (Cancel-After) passed before it was sent to BFL; "
                                                     "nothing was charged " + "é" * 40}
    assert store.transition(job.id, st.ABORTED, error=error)

    assert store.get(job.id).error == error
    assert store.connection.object("encoding", KEYS.job(job.id)) in (b"listpack", b"ziplist")
    assert store.connection.memory_usage(KEYS.job(job.id), samples=0) <= 1024
    # A record written before errors were kept in pieces reads as it did.
    store.connection.hset(KEYS.job(job.id), "error", '{"code":"old","message":"kept whole"}')
    store.connection.hdel(KEYS.job(job.id), *[f"error_{n}" for n in range(8)])
    assert store.get(job.id).error == {"code": "old", "message": "kept whole"}


def test_a_new_record_leaves_out_what_it_reads_back_without(store):
    job = _job(store, status=st.QUEUED)
    kept = {name.decode() for name in store.connection.hkeys(KEYS.job(job.id))}
    assert not kept & {"metadata", "ready_proven", "webhooks", "polls", "downloads"}, kept
    assert store.get(job.id) == job  # read back as made: {}, True and 0s
    assert store.count(job.id, "polls") == 1 and store.get(job.id).polls == 1


# A transition's lock, counter and effects: one step.

def _entry(job_id: str, value: str) -> AddTimelineEntry:
    return AddTimelineEntry(job_id, value)


def _entries(store: JobStore, job_id: str) -> list[bytes]:
    return store.connection.lrange(KEYS.timeline(job_id), 0, -1)


def test_a_transition_takes_its_lock_counts_and_runs_its_commands_together(store):
    job = _job(store, bfl_id="task-1")
    lock = Lock(f"test:lock:{job.id}", "holder-1", 60)
    change = store.transition(job.id, st.READY, terms=Terms(if_equal=("bfl_id", "task-1"), count="webhooks", lock=lock),
                              effects=(_entry(job.id, "first"),))
    assert change and change.locked and change.previous == st.SUBMITTED
    assert store.connection.get(lock.key) == b"holder-1" and 0 < store.connection.ttl(lock.key) <= 60
    assert _entries(store, job.id) == [b"first"]
    assert store.get(job.id).webhooks == 1


def test_commands_do_not_run_when_the_lock_is_held_or_the_job_does_not_move(store):
    job = _job(store, bfl_id="task-1")
    store.connection.set(f"test:lock:{job.id}", "someone-else")
    held = store.transition(job.id, st.READY, terms=Terms(lock=Lock(f"test:lock:{job.id}", "me", 60)),
                            effects=(_entry(job.id, "held"),))
    assert held and not held.locked  # the job moved; the lock was not ours to take
    assert store.connection.get(f"test:lock:{job.id}") == b"someone-else"
    other = _job(store, bfl_id="task-2")
    terms = Terms(if_equal=("bfl_id", "another-task"), count="webhooks", lock=Lock(f"test:lock:{other.id}", "me", 60))
    refused = store.transition(other.id, st.READY, terms=terms, effects=(_entry(other.id, "x"),))
    assert not refused and refused.previous == st.SUBMITTED and not refused.locked
    gone = new_job_id()
    missing = store.transition(gone, st.READY, effects=(_entry(gone, "y"),))
    assert not missing and missing.previous == ""
    assert _entries(store, job.id) == _entries(store, other.id) == _entries(store, gone) == []
    assert not store.connection.exists(f"test:lock:{other.id}")
    assert store.get(other.id).status == st.SUBMITTED and store.get(other.id).webhooks == 0


def test_without_a_lock_commands_run_with_the_move(store):
    job = _job(store)
    assert store.transition(job.id, st.READY)
    moved = store.transition(job.id, st.STORED,
                             effects=(_entry(job.id, "a"), _entry(job.id, "b")))
    assert moved and _entries(store, job.id) == [b"b", b"a"]  # newest first
    again = store.transition(job.id, st.STORED, effects=(_entry(job.id, "c"),))
    assert not again and len(_entries(store, job.id)) == 2


def test_a_sender_takes_the_submit_lock_and_reads_the_job_under_it_in_one_step(store):
    job = _job(store, status=st.QUEUED)
    store.connection.hset(KEYS.job(job.id), "deadline", "1795000000.5")
    lock = Lock(KEYS.submit_lock(job.id), "sender-1", 60)
    taken, read, _ = store.lock_for_send(job.id, lock)
    assert taken and read is not None and (read.id, read.status, read.deadline) == (job.id, st.QUEUED, 1795000000.5)
    assert store.connection.get(lock.key) == b"sender-1" and 0 < store.connection.ttl(lock.key) <= 60

    assert store.lock_for_send(job.id, Lock(lock.key, "sender-2", 60)) == (False, None, False)  # held: none sent
    assert store.connection.get(lock.key) == b"sender-1"
    gone = Lock(KEYS.submit_lock("job_gone"), "sender-3", 60)
    assert store.lock_for_send("job_gone", gone) == (True, None, False)


def test_a_prompt_is_kept_in_pieces_of_at_most_64_bytes_never_cut_inside_a_character(store):
    now = time.time()
    prompt = "a fox é€😀" * 40  # 15 bytes of characters of 1 to 4 bytes: a 64-byte cut falls at every offset in it
    job, _ = store.create(Job(id=new_job_id(now), status=st.QUEUED, prompt=prompt, created_at=now, updated_at=now))
    pieces = [value for name, value in store.connection.hgetall(KEYS.job(job.id)).items()
              if name.startswith(b"prompt_")]
    assert len(pieces) > 1 and all(len(piece) <= 64 for piece in pieces)
    assert all(piece.decode() for piece in pieces)  # each one whole UTF-8
    assert store.get(job.id).prompt == prompt[:2000]


LOCK = KEYS.download_lock("job_01LOCKSTESTJOB000000000")


def test_a_lock_has_one_holder_until_it_is_released(connection):
    locks = Locks(connection)
    assert locks.holder(LOCK) is None and locks.seconds_left(LOCK) == 0.0

    assert locks.acquire(LOCK, "task-1", 60) is True
    assert locks.acquire(LOCK, "task-2", 60) is False  # held: the second to ask is told so, and changes nothing
    assert locks.holder(LOCK) == "task-1"
    assert 59 < locks.seconds_left(LOCK) <= 60

    locks.release(LOCK)
    assert locks.holder(LOCK) is None and locks.seconds_left(LOCK) == 0.0
    assert locks.acquire(LOCK, "task-2", 60) is True and locks.holder(LOCK) == "task-2"


def test_a_lock_lapses_by_itself(connection):
    """A process that dies holding a lock frees it: the lock expires."""
    locks = Locks(connection)
    assert locks.acquire(LOCK, "dies-holding-it", 1)
    wait_until(lambda: locks.holder(LOCK) is None, timeout=5, interval=0.05, message="the lock to lapse")
    assert locks.seconds_left(LOCK) == 0.0
    assert locks.acquire(LOCK, "next", 1)


def test_release_frees_whoever_holds_it_and_a_free_key_is_harmless(connection):
    locks = Locks(connection)
    locks.release(LOCK)  # nothing held: nothing happens
    assert locks.acquire(LOCK, "someone-else", 60)
    locks.release(LOCK)
    assert locks.holder(LOCK) is None


def test_the_holder_reads_as_text_whatever_the_connection_decodes(connection):
    kwargs = connection.connection_pool.connection_kwargs
    decoding = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), decode_responses=True)
    try:
        assert Locks(connection).acquire(LOCK, "ünïcode-holder", 60)
        assert Locks(connection).holder(LOCK) == "ünïcode-holder"
        assert Locks(decoding).holder(LOCK) == "ünïcode-holder"
    finally:
        decoding.close()


def test_a_holder_frees_only_its_own_lock(connection):
    """A lock that lapsed, or was lost with a failed-over primary, and was taken by another since is not freed
    by its first holder's late release."""
    locks = Locks(connection)
    assert locks.acquire(LOCK, "first", 60)
    assert locks.release(LOCK, "second") is False and locks.holder(LOCK) == "first"
    assert locks.release(LOCK, "first") is True and locks.holder(LOCK) is None
    assert locks.release(LOCK, "first") is False  # nothing held: nothing happens
