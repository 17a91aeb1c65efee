"""A key's queued jobs and batch items are bounded (docs/operating.md, issue 83): creating a job (fluxhook/lifecycle/creating.py),
a batch (batching.py) or a track (tracking.py) past the key's ``max_queued`` (else ``MAX_QUEUED_PER_KEY``, which holds
the admin tokens together) is refused ``QueueFull`` and makes nothing, counts nothing; another key goes on meanwhile.
In-process on a real Redis and the simulator; over HTTP: tests/e2e/api/test_queue_full.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fluxhook.core import job as st
from fluxhook.core.errors import InvalidRequest, QueueFull
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.batching import create_batch, list_batches
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.tracking import TrackRequest, track_task
from fluxhook.store.keys import KEYS
from slot_helpers import waiting_of
from unit.lifecycle.batch_helpers import PRO, app_caller, batch_request

DB = 15  # make_services flushes it before and after
DEFAULT = 5  # MAX_QUEUED_PER_KEY here


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB, MAX_QUEUED_PER_KEY=str(DEFAULT))


def _queue(svc, caller: Caller, prompt: str = "[pending] queued"):
    """A job of ``caller`` left in line (no worker runs here: it stays queued)."""
    return create_job(svc, caller, JobRequest(PRO, {"prompt": prompt}), submit_here=False).job


def _queued_of(svc, caller: Caller) -> int:
    return len(waiting_of(svc.slots, caller.key_id))


def test_a_job_past_its_keys_max_queued_makes_nothing_and_counts_nothing_while_another_key_goes_on(svc, sim):
    a, b = app_caller(svc, max_queued=3, requests_per_minute=100), app_caller(svc)
    for n in range(3):
        _queue(svc, a, f"[pending] a {n}")
    made_before = svc.redis.zcard(KEYS.all_jobs)

    with pytest.raises(QueueFull) as caught:
        _queue(svc, a, "[pending] one too many")

    assert (caught.value.status, caught.value.code, caught.value.limit, caught.value.queued) == (429, "queue_full", 3, 3)
    assert "its limit of 3 (max_queued)" in caught.value.message and caught.value.retry_after
    assert svc.redis.zcard(KEYS.all_jobs) == made_before and _queued_of(svc, a) == 3
    assert svc.redis.zcard(KEYS.key_requests(a.key_id)) == 3  # the refused one gave its request back
    assert sim.stats()["submitted"] == 0
    # B's limit is MAX_QUEUED_PER_KEY, its own: all of it is B's.
    for n in range(DEFAULT):
        assert _queue(svc, b, f"[pending] b {n}").status == st.QUEUED
    with pytest.raises(QueueFull) as other:
        _queue(svc, b)
    assert other.value.limit == DEFAULT


def test_a_keys_max_queued_is_changed_and_returned_to_the_default_by_its_admin(svc, sim):
    a = app_caller(svc)
    assert key_admin.described(svc, [a.key], time.time())[0]["max_queued"] is None  # the default holds
    for _ in range(DEFAULT):
        _queue(svc, a)
    with pytest.raises(QueueFull):
        _queue(svc, a)

    raised = key_admin.change_key(svc, a.key_id, {"max_queued": DEFAULT + 2}, time.time())
    assert raised.max_queued == DEFAULT + 2
    _queue(svc, Caller(raised))
    _queue(svc, Caller(raised))
    with pytest.raises(QueueFull):
        _queue(svc, Caller(raised))
    back = key_admin.change_key(svc, a.key_id, {"max_queued": None}, time.time())
    assert back.max_queued is None and key_admin.described(svc, [back], time.time())[0]["queued"] == DEFAULT + 2


@pytest.mark.parametrize("value", [0, -1, 10_000_001, 2.5, "100", True])
def test_a_max_queued_that_is_no_whole_number_in_range_is_refused_by_name(svc, value):
    with pytest.raises(InvalidRequest, match="'max_queued' must be a whole number from 1 to 10000000"):
        key_admin.create_key(svc, {"name": "bad", "max_queued": value}, time.time())


def test_the_admin_tokens_are_held_to_max_queued_per_key_together(svc, sim):
    a = app_caller(svc, max_queued=DEFAULT + 3)
    for n in range(DEFAULT):
        _queue(svc, ADMIN, f"[pending] admin {n}")

    with pytest.raises(QueueFull) as caught:
        _queue(svc, ADMIN)

    assert caught.value.limit == DEFAULT and "raise MAX_QUEUED_PER_KEY" in caught.value.message
    for _ in range(DEFAULT + 3):  # a key of its own, with its own limit, beside them
        _queue(svc, a)


def test_a_batch_whose_items_would_pass_the_limit_is_refused_whole(svc, sim):
    a, b = app_caller(svc, max_queued=6, requests_per_minute=100), app_caller(svc)
    _queue(svc, a)
    _queue(svc, a)

    with pytest.raises(QueueFull) as caught:
        create_batch(svc, a, batch_request(5))

    assert "5 items would pass the limit of 6" in caught.value.message and "room for 4" in caught.value.message
    assert list_batches(svc, a, limit=10, cursor=None)[0] == [] and _queued_of(svc, a) == 2
    assert svc.redis.zcard(KEYS.key_requests(a.key_id)) == 2 and svc.redis.hgetall(KEYS.queue_room) == {}
    # As many as there is room for: made whole, and then a single job finds none.
    batch = create_batch(svc, a, batch_request(4))
    assert batch.total == 4 and _queued_of(svc, a) == 6
    with pytest.raises(QueueFull):
        _queue(svc, a)
    assert create_batch(svc, b, batch_request(DEFAULT)).total == DEFAULT  # B's queue is its own


def test_a_track_is_refused_while_its_keys_queue_is_full(svc, sim):
    a, b = app_caller(svc, max_queued=1), app_caller(svc, max_queued=1)
    _queue(svc, a)
    _queue(svc, b)

    with pytest.raises(QueueFull):
        track_task(svc, a, TrackRequest("bfl-task-of-a", model=PRO))

    assert svc.jobs.get_by_bfl_id("bfl-task-of-a") is None
    svc.jobs.transition(waiting_of(svc.slots, b.key_id)[0], st.ABORTED, error={"code": "x", "message": "x"})
    job, created = track_task(svc, b, TrackRequest("bfl-task-of-b", model=PRO))  # B's queue has room again
    assert created and job.status == st.SUBMITTED


def test_exactly_the_limit_is_made_when_many_requests_race_for_it(svc, sim):
    a, b = app_caller(svc, max_queued=7), app_caller(svc)
    made: dict[str, int] = {"a": 0, "b": 0, "refused": 0}
    lock = threading.Lock()
    go = threading.Barrier(12)

    def submit(n: int) -> None:
        go.wait()
        caller, name = (b, "b") if n % 4 == 0 else (a, "a")
        try:
            _queue(svc, caller, f"[pending] race {n}")
        except QueueFull:
            name = "refused"
        with lock:
            made[name] += 1

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(submit, range(24)))

    assert made == {"a": 7, "b": DEFAULT, "refused": 24 - 7 - DEFAULT}  # 6 of B's tried, 18 of A's
    assert _queued_of(svc, a) == 7 and _queued_of(svc, b) == DEFAULT
