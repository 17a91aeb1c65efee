"""What is left of a batch's items that end without being sent (fluxhook/store/lua/batch_prune.lua, run from
``steps.ending.end_unsent``), in-process on a real Redis and the simulator: a canceled batch's unsent items keep
nothing of their own (two bits at their index), the results still give every index in order with its job id and
metadata, an item BFL has is never
pruned, and another key's batch beside the one canceled keeps every record."""

from __future__ import annotations

import json
import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch import item_job_id
from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.lifecycle import deadlines, submitting
from fluxhook.lifecycle.batching import cancel_batch, create_batch, finish_cancels, get_batch, results
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import app_caller, batch_request

DB = 9
# What an item that ended unsent may keep in Redis, on average (its two bits, and the allocator's own overhead).
UNSENT_ITEM_BYTES = 256


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _lines(svc, batch) -> list[dict]:
    return [json.loads(line) for line in b"".join(results(svc, batch)).splitlines()]


def _bytes(svc) -> int:
    """What every key of the test's database takes (its own, unlike the server's used_memory)."""
    return sum(svc.redis.memory_usage(key, samples=0) or 0 for key in svc.redis.scan_iter(count=1000))


def _ended(svc, caller, batch_id: str):
    deadline = time.monotonic() + 30
    while (shown := get_batch(svc, caller, batch_id)).ended_at is None:
        assert time.monotonic() < deadline, shown
        finish_cancels(svc, time.time() + CLAIM_LEASE + 1)  # the sweep's part: what the request had no time for
    return shown


def test_a_canceled_batchs_unsent_items_keep_nothing_but_their_count_and_index(svc, sim):
    a, b = app_caller(svc, max_active=1), app_caller(svc)
    theirs = create_batch(svc, b, batch_request(20))
    before, keys_before = _bytes(svc), set(svc.redis.keys("*"))
    batch = create_batch(svc, a, batch_request(1000, notify_url="https://example.com/hook", job_events=("job.ended",)))

    cancel_batch(svc, a, batch.id)
    shown = _ended(svc, a, batch.id)

    assert shown.counts == {st.ABORTED: 1000} and shown.total == 1000
    grown = _bytes(svc) - before
    assert grown / 1000 <= UNSENT_ITEM_BYTES, f"{grown / 1000:.0f} bytes an item"
    # No key of an item's is left (the batch's own record and bitmap, and the stack's shared lists, are new).
    new = set(svc.redis.keys("*")) - keys_before
    assert KEYS.batch_unsent(batch.id).encode() in new and not [k for k in new if b"job_" in k], sorted(new)
    assert len(new) <= 10, sorted(new)
    assert svc.redis.zcard(KEYS.batch_jobs(batch.id)) == 0 and svc.redis.zcard(KEYS.status(st.ABORTED)) == 0
    assert svc.redis.zrange(KEYS.outbox, 0, -1) == [f"{batch.id}|batch.ended".encode()]  # the batch's end alone
    lines = _lines(svc, shown)
    assert [x["index"] for x in lines] == list(range(1000))
    assert {(x["status"], x["error"]["code"]) for x in lines} == {(st.ABORTED, "batch_canceled")}
    # Each line still maps back to its item: its own job id (its batch's and index's) and metadata, from storage.
    assert [(x["job_id"], x["metadata"]) for x in lines] == [(item_job_id(batch.id, i), {"sku": i}) for i in range(1000)]
    # B's batch beside it: every item still a job in line, its own record and index.
    assert get_batch(svc, b, theirs.id).counts == {st.QUEUED: 20}
    assert svc.redis.zcard(KEYS.batch_jobs(theirs.id)) == 20


def test_an_item_bfl_has_is_never_pruned_and_the_results_keep_the_items_order(svc, sim):
    a = app_caller(svc)
    batch = create_batch(svc, a, batch_request(5))
    sent = svc.slots.dispatch(limit=2).jobs
    for job_id in sent:
        submitting.submit_queued(svc, job_id)

    cancel_batch(svc, a, batch.id)

    lines = _lines(svc, get_batch(svc, a, batch.id))
    assert [x["index"] for x in lines] == [0, 1, 2, 3, 4]
    assert [x["job_id"] for x in lines] == [item_job_id(batch.id, i) for i in range(5)]
    kept = [x for x in lines if x["status"] != st.ABORTED]
    assert sorted(x["job_id"] for x in kept) == sorted(sent) and {x["status"] for x in kept} == {st.SUBMITTED}
    assert [x["metadata"] for x in kept] == [{"sku": x["index"]} for x in kept]
    assert all(svc.jobs.get(job_id).status == st.SUBMITTED for job_id in sent)
    for job_id in sent:  # nothing left at the simulator for the next tests
        sim.complete(svc.jobs.get(job_id).bfl_id)


def test_an_item_aborted_at_its_deadline_is_pruned_unless_its_own_end_is_to_be_told(svc, sim):
    a = app_caller(svc, max_active=1)
    quiet = create_batch(svc, a, batch_request(3))
    told = create_batch(svc, a, batch_request(2, notify_url="https://example.com/hook", job_events=("job.ended",)))
    past = time.time() - 1
    for batch in (quiet, told):
        for job_id in svc.redis.zrange(KEYS.batch_jobs(batch.id), 0, -1):
            svc.jobs.update(job_id.decode(), deadline=past)
            svc.redis.zadd(KEYS.deadlines, {job_id: past})

    assert deadlines.enforce_deadlines(svc, time.time()) == 5

    lines = _lines(svc, get_batch(svc, a, quiet.id))
    assert [(x["index"], x["job_id"], x["metadata"], x["error"]["code"]) for x in lines] == [
        (i, item_job_id(quiet.id, i), {"sku": i}, "deadline_exceeded") for i in range(3)]
    # Its item's job.ended message is owed: the record stays for it, in the outbox.
    kept = _lines(svc, get_batch(svc, a, told.id))
    assert [x["job_id"] is not None and x["status"] == st.ABORTED for x in kept] == [True, True]
    assert all(svc.redis.zscore(KEYS.outbox, x["job_id"]) is not None for x in kept)
