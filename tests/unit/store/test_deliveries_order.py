"""The order notification attempts get their room in (lua/notify_take.lua, lua/notify_room.lua) on a real Redis: a
key's single jobs' messages before its batch items', then earliest due first, whether they wait ripe in the due set or
parked behind a full receiver; another key's messages keep their places; entries an older release kept are taken."""

from __future__ import annotations

import pytest

from fluxhook.store.deliveries import PER_RECEIVER, TAKE_LOOKS, Deliveries, Message
from fluxhook.store.keys import KEYS
from helpers import commands_during
from notify_helpers import add_due, ended

NOW = 1_800_000_000.0
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"
SLOW, OTHER = "slow.example.com:443", "b.example.com:443"


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _message(owner: str, host: str, name: str, bulk: bool) -> Message:
    return Message(id=f"msg_{owner}_{name}", job_id=f"job_{name}", owner=owner, event="job.ended", kind="webhook",
                   host=host, target="t", bulk=bulk)


def _due(store: Deliveries, owner: str, host: str, count: int, at: float, bulk: bool = True,
         name: str = "item") -> list[str]:
    """``count`` messages of ``owner`` to ``host``, a batch's items (``bulk``) or single jobs', due from ``at`` a
    millisecond apart; their members."""
    messages = [_message(owner, host, f"{name}{n:04d}", bulk) for n in range(count)]
    return add_due(store, [(message, at + n / 1000) for n, message in enumerate(messages)])


def test_a_key_s_single_job_goes_before_its_batch_items_parked_behind_its_full_receiver(store):
    items = _due(store, A, SLOW, 10, NOW - 10)
    theirs = _due(store, B, OTHER, 3, NOW - 9)  # another key's batch, to a receiver of its own
    assert store.take(NOW, 8).members == [items[0], theirs[0], items[1], theirs[1]]  # the keys in turns
    # The single job ends after the whole batch: its receiver is full, so it is parked behind the batch's items.
    [single] = _due(store, A, SLOW, 1, NOW - 1, bulk=False, name="single")
    assert store.take(NOW, 8).members == []
    ended(store, items[0])
    ended(store, theirs[0])
    # The receiver's room goes to the single job's message, not to the batch's next item; the other key's receiver
    # is untouched by it: its own next item, its turn level with A's and due first.
    assert store.take(NOW + 1, 8).members == [theirs[2], single]
    ended(store, items[1])
    ended(store, single)
    assert store.take(NOW + 1, 8).members == items[2:4]  # then the batch's items, earliest due first


def test_a_key_s_single_job_ripe_behind_its_batch_items_takes_its_receiver_s_room_first(store):
    items = _due(store, A, SLOW, 5, NOW - 10)
    theirs = _due(store, B, OTHER, 1, NOW - 5)
    [single] = _due(store, A, SLOW, 1, NOW - 1, bulk=False, name="single")
    # A's messages go single first; the keys take turns, B's message first, its turn level with A's and its message
    # due before A's single.
    assert store.take(NOW, 8).members == [theirs[0], single, items[0]]
    ended(store, items[0])
    assert store.take(NOW + 1, 8).members == [items[1]]


def test_another_key_s_order_is_its_own(store):
    # B's batch items are due before A's single job: A's single goes first among A's messages only, and the keys
    # take turns whatever their messages' forms.
    theirs = _due(store, B, OTHER, 2, NOW - 10)
    mine = _due(store, A, SLOW, 1, NOW - 5, name="single", bulk=False)
    assert store.take(NOW, 2).members == [theirs[0], *mine]  # as many as asked for
    assert store.take(NOW, 2).members == theirs[1:]


def test_a_batch_item_s_message_is_marked_and_read_back_so(store):
    single, item = _message(A, SLOW, "single", False), _message(A, SLOW, "item", True)
    pipe = store.connection.pipeline(transaction=True)
    store.add(single, None, pipe)
    store.add(item, None, pipe)
    pipe.execute()
    assert single.member == f"{A}|{SLOW}|{single.id}" and item.member == f"{A}|{SLOW}|~|{item.id}"
    assert store.get(item.id).member == item.member and store.get(single.id).member == single.member


def test_entries_an_older_release_kept_are_still_taken(store, connection):
    # An older release's messages carry no mark (no `bulk` field): their members are the unmarked ones it put in
    # the due set, and its parked entries `<field>|<due>|<member>` come back in due order, after today's singles.
    older = [_message(A, SLOW, f"old{n}", False) for n in range(3)]
    pipe = connection.pipeline(transaction=True)
    for message in older:
        store.add(message, None, pipe)
    pipe.execute()
    receiver, owner = f"r:{A}|{SLOW}", f"o:{A}"
    connection.zadd(KEYS.notify_due, {older[0].member: NOW - 10, older[1].member: NOW - 10})
    assert store.take(NOW, 8).members == [older[0].member, older[1].member]
    connection.zadd(KEYS.notify_parked, {f"{receiver}|{NOW - 9:017.3f}|{older[2].member}": 0})
    [single] = _due(store, A, SLOW, 1, NOW - 1, bulk=False, name="single")
    assert store.take(NOW, 8).members == []
    ended(store, older[0].member)
    assert store.take(NOW, 8).members == [single]
    ended(store, older[1].member)
    assert store.take(NOW, 8).members == [older[2].member]
    assert int(connection.hget(KEYS.notify_busy, owner)) == 2


def test_a_take_reads_the_due_set_once_however_many_it_looks_at(store, connection):
    _due(store, A, SLOW, 50, NOW - 10)
    sent = commands_during(connection, 3, lambda: store.take(NOW, 8))
    reads = [c for c in sent if c["command"].upper().startswith(f"ZRANGEBYSCORE {KEYS.notify_due}".upper())]
    assert [c["command"].split()[-1] for c in reads] == [str(TAKE_LOOKS)]
    assert connection.zcard(KEYS.notify_parked) == 50 - PER_RECEIVER
