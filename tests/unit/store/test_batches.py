"""fluxhook/store/batches.py on a real Redis: a batch's record and counts read back in one trip, each owner's list its
own, a cancel recorded once and claimed by one sweep at a time, and a batch forgotten whole."""

from __future__ import annotations

import time

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, new_batch_id
from fluxhook.store.batch_turns import Rules
from fluxhook.store.batches import Batches
from fluxhook.store.keys import KEYS


def _batch(key_id: str | None, total: int = 3, **fields) -> Batch:
    return Batch(id=new_batch_id(), model="flux-2-pro", total=total, created_at=time.time(), key_id=key_id, **fields)


def test_a_batch_reads_back_with_every_item_queued_and_its_message_wanted_only_with_a_url(connection):
    batches = Batches(connection, ttl=3600)
    made = _batch("key_a", metadata={"run": 1}, notify_url="https://a.example/h", notify_events=("job.ended",))
    plain = _batch(None)
    batches.create(made, making_until=time.time() + 60)
    batches.create(plain, making_until=time.time() + 60)

    read = batches.get(made.id)
    assert read is not None and read.counts == {st.QUEUED: 3} and read.total == 3 and read.metadata == {"run": 1}
    assert (read.notify_url, read.notify_events, read.key_id) == ("https://a.example/h", ("job.ended",), "key_a")
    assert connection.hexists(KEYS.batch_counts, f"{made.id}|notify")
    assert not connection.hexists(KEYS.batch_counts, f"{plain.id}|notify")
    assert 0 < connection.ttl(KEYS.batch(made.id)) <= 3600
    assert batches.get("bat_" + "0" * 26) is None and batches.get("../x") is None



def test_many_batches_read_in_one_round_trip_in_the_order_asked(connection):
    batches = Batches(connection)
    a, b = _batch("key_a"), _batch("key_b", total=5)
    batches.create(a, making_until=time.time() + 60)
    batches.create(b, making_until=time.time() + 60)
    before = connection.info("stats")["total_commands_processed"]

    read = batches.get_many([b.id, "bat_" + "0" * 26, "../x", a.id])

    assert [x.id if x else None for x in read] == [b.id, None, None, a.id] and read[0].total == 5
    # 2 reads per well-formed id, pipelined, and the INFO that counts them
    assert connection.info("stats")["total_commands_processed"] - before == 2 * 3 + 1
    assert batches.get_many([]) == []

def test_each_owner_lists_its_own_newest_first_and_every_owner_all(connection):
    batches = Batches(connection)
    first, second, theirs = _batch("key_a"), _batch("key_a"), _batch("key_b")
    for batch in (first, second, theirs):
        batches.create(batch, making_until=time.time() + 60)

    page, cursor = batches.list("key_a", every_owner=False, limit=1)
    assert [b.id for b in page] == [second.id] and cursor == second.id
    assert [b.id for b in batches.list("key_a", every_owner=False, limit=5, cursor=cursor)[0]] == [first.id]
    assert [b.id for b in batches.list("key_b", every_owner=False, limit=5)[0]] == [theirs.id]
    assert [b.id for b in batches.list(None, every_owner=True, limit=5)[0]] == [theirs.id, second.id, first.id]


def test_a_cancel_is_recorded_once_and_one_sweep_at_a_time_takes_it(connection):
    batches = Batches(connection)
    batch, other = _batch("key_a"), _batch("key_b")
    batches.create(batch, making_until=time.time() + 60)
    batches.create(other, making_until=time.time() + 60)
    now = time.time()

    assert batches.cancel(batch.id, now) and not batches.cancel(batch.id, now + 1)
    assert batches.canceled(batch.id) and not batches.canceled(other.id)
    assert batches.claim_canceling(now, 10, now + 60) == [batch.id]
    assert batches.claim_canceling(now + 1, 10, now + 61) == []  # claimed: no second sweep takes it
    batches.cancel_went_on(batch.id, "job_X", done=False, again_at=now + 2)
    assert batches.cancel_cursor(batch.id) == "job_X" and batches.claim_canceling(now + 2, 10, now + 62) == [batch.id]
    batches.cancel_went_on(batch.id, None, done=True, again_at=now + 3)
    assert batches.claim_canceling(now + 100, 10, now + 160) == [] and batches.cancel_cursor(batch.id) is None
    assert batches.get(other.id).canceled_at is None


def test_a_batch_forgotten_leaves_nothing_of_it_and_the_others_as_they_were(connection):
    batches = Batches(connection)
    gone, kept = _batch("key_a", notify_url="https://a.example/h"), _batch("key_a")
    batches.create(gone, making_until=time.time() + 60)
    batches.create(kept, making_until=time.time() + 60)

    batches.forget(gone.id)

    assert batches.get(gone.id) is None and not [f for f in connection.hkeys(KEYS.batch_counts) if gone.id.encode() in f]
    assert [b.id for b in batches.list("key_a", every_owner=False, limit=5)[0]] == [kept.id]
    assert batches.get(kept.id).counts == {st.QUEUED: 3}


def test_a_batch_whose_making_stopped_is_claimed_by_one_sweep_and_cut_to_the_items_made_once(connection):
    batches = Batches(connection, ttl=3600)
    stopped, other = _batch("key_x"), _batch("key_v")
    batches.create(stopped, making_until=time.time() - 1)  # its maker made one item, then made nothing for a lease
    batches.create(other, making_until=time.time() + 60)  # another key's, being made
    connection.zadd(KEYS.batch_jobs(stopped.id), {"job_01": 0})

    now = time.time()
    assert batches.claim_unmade(now, 10, now + 60) == [stopped.id]
    assert batches.claim_unmade(now, 10, now + 60) == []  # one sweep takes it

    assert batches.cut_short(stopped.id, now, claimed=now + 60) == (1, 3)
    cut = batches.get(stopped.id)
    assert (cut.total, cut.counts, cut.status, cut.canceled_at is not None) == (1, {st.QUEUED: 1}, "canceled", True)
    assert cut.to_api()["error"]["code"] == "creation_interrupted" and "after 1 of its 3 items" in \
        cut.to_api()["error"]["message"]
    assert connection.zscore(KEYS.batches_canceling, stopped.id) is not None  # its item is ended by the cancel sweep
    # Its maker, had it lived, learns it was cut and makes no more.
    assert not batches.making_went_on("its turn", stopped.id, now, 60) and not batches.made(stopped.id)
    assert batches.cut_short(stopped.id, now + 1) == (1, 3) and batches.get(stopped.id).total == 1  # changes nothing
    connection.zadd(KEYS.batch_jobs(stopped.id), {"job_02": 0})  # a trip its stalled maker finished after the cut
    assert batches.cut_short(stopped.id, now + 2) == (2, 3)
    assert (batches.get(stopped.id).total, batches.get(stopped.id).counts) == (2, {st.QUEUED: 2})

    untouched = batches.get(other.id)
    assert (untouched.total, untouched.status, untouched.to_api()["error"]) == (3, "running", None)
    assert batches.making_went_on("its turn", other.id, now, 60) and batches.made(other.id)
    assert batches.claim_unmade(now + 120, 10, now + 180) == []  # made: never cut


def test_a_making_that_goes_on_keeps_its_turn_past_the_first_lease_and_one_that_stopped_loses_it(connection):
    batches = Batches(connection, ttl=3600)
    now, batch, at = time.time(), _batch("key_x"), Rules(items_at_once=1, lease=15)
    x = batches.turns.join("key_x", 3, now - 20, at)  # its turn ends at now - 5
    assert x.holds and batches.making_went_on(x.member, None, now - 10, 15)  # its items checked: no batch yet
    v = batches.turns.join("key_v", 2, now - 4, at)
    assert not v.holds
    batches.create(batch, making_until=now + 5)

    assert batches.making_went_on(x.member, batch.id, now, 15)
    assert not batches.turns.look(v, now + 6, at).holds  # X's goes on: V waits
    assert batches.claim_unmade(now + 6, 10, now + 60) == []
    assert batches.turns.look(v, now + 16, at).holds  # X's made nothing for 15 s
    assert batches.claim_unmade(now + 16, 10, now + 60) == [batch.id]


def test_a_batch_whose_making_went_on_after_the_sweeps_claim_is_not_cut(connection):
    batches = Batches(connection, ttl=3600)
    now, batch = time.time(), _batch("key_x")
    batches.create(batch, making_until=now - 1)
    assert batches.claim_unmade(now, 10, now + 60) == [batch.id]
    assert batches.making_went_on("its turn", batch.id, now, 15)  # its maker's heartbeat, between claim and cut

    assert batches.cut_short(batch.id, now, claimed=now + 60) is None
    kept = batches.get(batch.id)
    assert (kept.total, kept.status, kept.interrupted_at) == (3, "running", None) and batches.made(batch.id)
