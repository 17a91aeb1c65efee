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
from fluxhook.core import transitions as st
from fluxhook.lifecycle import batching, key_admin
from fluxhook.lifecycle.batching import BatchItem, BatchRequest, create_batch, get_batch, list_batches
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.keys import KEYS

DB = 8
ITEMS = 2 * batching.ITEMS_PER_TRIP + 200  # three trips


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _key(svc) -> Caller:
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}"}, time.time())
    return Caller(key)


def _request(n: int) -> BatchRequest:
    return BatchRequest("flux-2-pro", [BatchItem({"prompt": f"[pending] item {i}"}) for i in range(n)])


def _only_batch(svc, caller: Caller):
    found = list_batches(svc, caller, limit=10, cursor=None)[0]
    assert len(found) == 1, found
    return found[0]


def _ended_by_sweeps(svc, caller: Caller, batch_id: str):
    wait_until(lambda: sweep(svc) is not None and get_batch(svc, caller, batch_id).ended_at is not None, timeout=30,
               message="the cut batch's items ended by the sweep")
    return get_batch(svc, caller, batch_id)


def test_a_batch_redis_failed_mid_way_holds_the_items_made_is_canceled_and_ends(svc, monkeypatch):
    x, v = _key(svc), _key(svc)
    others = create_batch(svc, v, _request(3))
    assert svc.redis.zscore(KEYS.batches_unmade, others.id) is None  # made whole: nothing left for the sweep
    join_all, trips = svc.slots.join_all, []

    def second_trip_fails(made, **kwargs):
        trips.append(len(made))
        if len(trips) == 2:
            raise redis.ConnectionError("Redis went away")
        return join_all(made, **kwargs)

    monkeypatch.setattr(svc.slots, "join_all", second_trip_fails)
    with pytest.raises(redis.ConnectionError):
        create_batch(svc, x, _request(ITEMS))
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


def test_a_batch_whose_maker_went_silent_is_cut_by_the_sweep_and_its_maker_makes_no_more(svc, monkeypatch):
    x = _key(svc)
    went_on, stalled, release = svc.store.batches.making_went_on, threading.Event(), threading.Event()

    def silent_before_the_second_trip(turn, batch_id, now, lease):
        if stalled.is_set() or len(svc.store.batches.item_ids_at(batch_id, 0, 1_000)) < batching.ITEMS_PER_TRIP:
            return went_on(turn, batch_id, now, lease)
        stalled.set()
        release.wait(timeout=30)  # as a web process stopped (SIGSTOP, a swap storm), then going on
        return went_on(turn, batch_id, time.time(), lease)

    monkeypatch.setattr(svc.store.batches, "making_went_on", silent_before_the_second_trip)
    answered: list = []
    maker = threading.Thread(target=lambda: answered.append(create_batch(svc, x, _request(ITEMS))))
    maker.start()
    try:
        assert stalled.wait(timeout=30)
        assert sweep(svc, time.time() + 1) is not None and _only_batch(svc, x).interrupted_at is None  # not yet
        sweep(svc, time.time() + batching.MAKING_LEASE + 1)  # its making stopped for a lease: cut
        assert _only_batch(svc, x).total == 500
    finally:
        release.set()
        maker.join(timeout=30)

    assert len(answered) == 1 and answered[0].total == 500 and str(answered[0].status) == "canceled"
    assert sum(map(len, svc.store.batches.item_ids(answered[0].id))) == 500  # the maker made no more
    assert _ended_by_sweeps(svc, x, answered[0].id).counts == {st.ABORTED: 500}
