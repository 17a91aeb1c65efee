"""A batch whose making stopped before its last item (fluxhook/lifecycle/batching.py, ``lua/batch_cut.lua``): Redis
failing it mid-way, or its maker going silent as a killed web process does, leaves a batch that holds the items made,
is canceled (so a batch sent again makes no item twice) and ends once they have; another key's batch is untouched.
In-process on a real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.errors import BatchInterrupted
from fluxhook.lifecycle import batching
from fluxhook.lifecycle.batching import create_batch, get_batch, list_batches
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import app_caller, batch_request

DB = 8
ITEMS = 2 * batching.ITEMS_PER_TRIP + 200  # three trips


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)




def _only_batch(svc, caller: Caller):
    found = list_batches(svc, caller, limit=10, cursor=None)[0]
    assert len(found) == 1, found
    return found[0]


def _ended_by_sweeps(svc, caller: Caller, batch_id: str):
    wait_until(lambda: sweep(svc) is not None and get_batch(svc, caller, batch_id).ended_at is not None, timeout=30,
               message="the cut batch's items ended by the sweep")
    return get_batch(svc, caller, batch_id)


def test_a_batch_redis_failed_mid_way_holds_the_items_made_is_canceled_and_ends(svc, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    others = create_batch(svc, v, batch_request(3))
    assert svc.redis.zscore(KEYS.batches_unmade, others.id) is None  # made whole: nothing left for the sweep
    join_all, trips = svc.slots.join_all, []

    def second_trip_fails(made, **kwargs):
        trips.append(len(made))
        if len(trips) == 2:
            raise redis.ConnectionError("Redis went away")
        return join_all(made, **kwargs)

    monkeypatch.setattr(svc.slots, "join_all", second_trip_fails)
    with pytest.raises(redis.ConnectionError):
        create_batch(svc, x, batch_request(ITEMS))
    monkeypatch.undo()

    cut = _only_batch(svc, x)
    assert (cut.total, cut.counts, str(cut.status)) == (500, {st.QUEUED: 500}, "canceled")
    assert sum(map(len, svc.store.batches.item_ids(cut.id))) == 500
    error = cut.to_api()["error"]
    assert error["code"] == "creation_interrupted" and f"after 500 of its {ITEMS:,} items" in error["message"]

    ended = _ended_by_sweeps(svc, x, cut.id)
    assert (ended.counts, ended.progress) == ({st.ABORTED: 500}, 1.0)  # none sent, none charged
    untouched = get_batch(svc, v, others.id)
    assert (untouched.counts, str(untouched.status), untouched.to_api()["error"]) == ({st.QUEUED: 3}, "running", None)


def test_a_batch_whose_process_stalled_is_cut_by_the_sweep_counts_what_it_made_after_and_its_request_says_so(
        svc, monkeypatch):
    x, v = app_caller(svc), app_caller(svc)
    join_all, went_on = svc.slots.join_all, svc.store.batches.making_went_on
    stalled, release, trips = threading.Event(), threading.Event(), []

    def stalls_on_the_second_trip(made, **kwargs):  # as a process stopped (SIGSTOP, a swap storm) mid-making
        trips.append(len(made))
        if len(trips) == 2:
            stalled.set()
            release.wait(timeout=30)
        return join_all(made, **kwargs)

    def heartbeat_stalls_too(*args):
        if stalled.is_set() and not release.is_set():
            release.wait(timeout=30)
        return went_on(*args)

    monkeypatch.setattr(batching, "BATCH_MAKING_LEASE", 0.6)  # the heartbeat beats every 0.2 s
    monkeypatch.setattr(svc.slots, "join_all", stalls_on_the_second_trip)
    monkeypatch.setattr(svc.store.batches, "making_went_on", heartbeat_stalls_too)
    failed: list = []

    def make() -> None:
        try:
            create_batch(svc, x, batch_request(ITEMS))
        except BatchInterrupted as exc:
            failed.append(exc)

    maker = threading.Thread(target=make)
    maker.start()
    try:
        assert stalled.wait(timeout=30)
        assert sweep(svc, time.time()) is not None and _only_batch(svc, x).interrupted_at is None  # heard < a lease ago
        sweep(svc, time.time() + 1)  # not heard of for a lease: cut
        assert _only_batch(svc, x).total == batching.ITEMS_PER_TRIP
        others = create_batch(svc, v, batch_request(3))  # V's batch made meanwhile, untouched
    finally:
        release.set()
        maker.join(timeout=30)

    # The stalled trip's items, made after the cut, count too; no third trip was made. The request says what happened
    # with a 503 (its Idempotency-Key freed), never a 202 for a batch that is not what it asked for.
    assert len(failed) == 1 and failed[0].status == 503 and failed[0].retry_after
    assert "after 1,000 of its 1,200 items" in failed[0].message, failed[0].message
    cut = _only_batch(svc, x)
    assert cut.total == 2 * batching.ITEMS_PER_TRIP == sum(map(len, svc.store.batches.item_ids(cut.id)))
    assert trips == [500, 500, 3] and str(cut.status) == "canceled"  # X's two trips, then V's one
    assert _ended_by_sweeps(svc, x, cut.id).counts == {st.ABORTED: 2 * batching.ITEMS_PER_TRIP}
    assert get_batch(svc, v, others.id).counts == {st.QUEUED: 3}


def test_a_trip_slower_than_the_lease_is_not_taken_for_a_dead_makers_while_its_request_lives(svc, monkeypatch):
    x = app_caller(svc)
    join_all = svc.slots.join_all

    def slow_trip(made, **kwargs):  # inputs put in a slow storage, say: the heartbeat goes on meanwhile
        time.sleep(1.5)
        return join_all(made, **kwargs)

    # A lease of 1.2 s, beaten every 0.4 s: a loaded host (CI's 4 processes on 2 cores) once kept the beat off the
    # CPU past a lease of 0.6 s; each trip is still longer than the lease.
    monkeypatch.setattr(batching, "BATCH_MAKING_LEASE", 1.2)
    monkeypatch.setattr(svc.slots, "join_all", slow_trip)
    done: list = []
    maker = threading.Thread(target=lambda: done.append(create_batch(svc, x, batch_request(ITEMS))))
    maker.start()
    while maker.is_alive():
        sweep(svc, time.time())
        time.sleep(0.05)
    assert len(done) == 1 and done[0].total == ITEMS and done[0].interrupted_at is None
    assert str(done[0].status) == "running"
