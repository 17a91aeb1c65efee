"""The one rule that hands out notification attempts (fluxhook/store/deliveries.py ``take``/``finish``,
lua/notify_take.lua, lua/notify_finish.lua) on a real Redis, with two app keys: the one whose receiver holds its
attempts, and what the other sees. Two ``Deliveries`` on two connections stand for two worker processes."""

from __future__ import annotations

import pytest

from fluxhook.core.holds import ATTEMPT_LEASE
from fluxhook.store.deliveries import PER_OWNER, Deliveries, Message, member_message
from fluxhook.store.keys import KEYS
from notify_helpers import add_due, ended

NOW = 1_800_000_000.0
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _due(store: Deliveries, owner: str, host: str, count: int, at: float = NOW - 10, first: int = 0) -> list[str]:
    """``count`` messages of ``owner`` to ``host`` due at ``at`` (one a millisecond apart, in order); their members."""
    members = []
    pipe = store.connection.pipeline(transaction=True)
    for n in range(first, first + count):
        message = Message(id=f"msg_{owner}_{host}_{n:04d}", job_id=f"job_{n}", owner=owner, event="job.ended",
                          kind="webhook", host=host, target="t")
        store.schedule([message], at + n / 1000, pipe, wake=False)
        members.append(message.member)
    pipe.execute()
    return members


def test_a_receiver_that_holds_its_attempts_has_two_and_another_key_s_message_goes_at_once(store, other_process):
    slow = _due(store, A, "slow.example.com:443", 100)
    theirs = _due(store, B, "fast.example.com:443", 1, at=NOW - 1)  # due after all of A's
    taken = store.take(NOW, 8).members
    assert taken == [slow[0], *theirs, slow[1]]  # the keys take turns: B's second, though due after A's hundred
    # The rest of A's wait out of the due set, behind their receiver: another process finds none of them to take.
    assert other_process.take(NOW, 8).members == []
    assert store.connection.zcard(KEYS.notify_parked) == 98
    later = _due(store, B, "fast.example.com:443", 1, at=NOW, first=1)
    assert other_process.take(NOW + 1, 8).members == later


def test_an_attempt_s_end_lets_the_next_of_its_receiver_go_in_its_order(store, other_process):
    slow = _due(store, A, "slow.example.com:443", 5)
    assert store.take(NOW, 8).members == slow[:2]
    ended(store, slow[0], NOW + 10)  # a retry: due again later, in the same set as any first attempt
    assert other_process.take(NOW + 1, 8).members == [slow[2]]  # the next in order, not the retry
    ended(store, slow[1])
    ended(store, slow[2])
    assert store.take(NOW + 1, 8).members == slow[3:5]
    assert store.take(NOW + 10, 8).members == []  # its receiver is full again: the retry waits its turn
    ended(store, slow[3])
    assert store.take(NOW + 10, 8).members == [slow[0]]


def test_an_owner_s_receivers_together_hold_at_most_four(store):
    mine = [_due(store, A, f"r{n}.example.com:443", 3) for n in range(3)]
    theirs = _due(store, B, "b.example.com:443", 1, at=NOW - 1)
    taken = store.take(NOW, 16).members
    assert sum(m in taken for batch in mine for m in batch) == PER_OWNER
    assert set(theirs) <= set(taken)
    assert store.connection.hmget(KEYS.notify_busy, f"o:{A}", f"o:{B}") == [str(PER_OWNER).encode(), b"1"]


def test_an_attempt_whose_process_died_is_due_again_once_its_lease_lapses_and_its_room_comes_back(store, other_process):
    slow = _due(store, A, "slow.example.com:443", 3)
    assert store.take(NOW, 8).members == slow[:2]  # then this process dies
    assert other_process.take(NOW + ATTEMPT_LEASE - 1, 8).members == []
    taken = other_process.take(NOW + ATTEMPT_LEASE + 1, 8).members
    # Their room back: the one that waited behind them goes first (due earliest), then the lapsed ones, each due
    # again at its lease's end like a retry; never more than two at once.
    assert taken == [slow[2], slow[0]]
    assert int(store.connection.hget(KEYS.notify_busy, f"r:{A}|slow.example.com:443")) == 2
    ended(other_process, slow[2])
    assert other_process.take(NOW + ATTEMPT_LEASE + 2, 8).members == [slow[1]]


def test_a_message_sent_again_while_its_attempt_is_under_way_is_not_attempted_twice_at_once(store):
    [member] = _due(store, A, "a.example.com:443", 1)
    assert store.take(NOW, 8).members == [member]
    store.connection.zadd(KEYS.notify_due, {member: NOW})  # a replay while the attempt is under way
    assert store.take(NOW + 1, 8).members == []
    ended(store, member)
    assert store.take(NOW + 2, 8).members == [] and not store.connection.exists(KEYS.notify_busy)


def test_members_name_their_message(store):
    [member] = _due(store, A, "a.example.com:443", 1)
    assert member_message(member) == f"msg_{A}_a.example.com:443_0000"


def test_a_deleted_job_s_message_under_way_keeps_its_room_until_its_attempt_ends(store):
    messages = [Message(id=f"msg_job_{n}", job_id=f"job_{n}", owner=A, event="job.ended", kind="webhook",
                        host="slow.example.com:443", target="t") for n in range(3)]
    add_due(store, [(message, NOW - 10 + n) for n, message in enumerate(messages)])
    taken = store.take(NOW, 8)
    assert taken.members == [messages[0].member, messages[1].member]
    store.forget_job("job_0", 0)  # deleted while its attempt is under way: the receiver still holds it
    assert store.take(NOW + 1, 8).members == []
    store.record(taken.attempts[0], messages[0], (NOW, None, "timeout", 15_000), "pending", NOW + 60)  # it ends
    assert store.take(NOW + 1, 8).members == [messages[2].member]
    assert store.connection.zscore(KEYS.notify_due, messages[0].member) is None  # not recreated


def test_an_attempt_s_end_that_brings_a_parked_message_back_or_sets_a_retry_wakes_a_notifier_else_none(store):
    slow = _due(store, A, "slow.example.com:443", 3)
    theirs = _due(store, B, "fast.example.com:443", 1)
    assert sorted(store.take(NOW, 8).members) == sorted(slow[:2] + theirs)
    store.connection.delete(KEYS.notify_added)
    ended(store, theirs[0])  # nothing of B's waits behind its receiver: nobody to wake
    assert store.connection.llen(KEYS.notify_added) == 0
    ended(store, slow[0])  # A's third comes back into the room it freed: a notifier takes it now
    assert store.connection.llen(KEYS.notify_added) == 1
    assert store.take(NOW, 8).members == [slow[2]]
    store.connection.delete(KEYS.notify_added)
    ended(store, slow[1], NOW + 30)  # a retry, and A's room back with nothing behind it: one wake-up for the step
    assert store.connection.lrange(KEYS.notify_added, 0, -1) == [b"1"]


def test_a_dead_process_s_attempt_has_its_room_back_and_goes_again_at_its_lease_while_another_key_s_goes(
        store, other_process):
    """An attempt is held by its lease alone: one whose process died (taken, never ended) holds its receiver's room
    while another key's message goes; once its lease lapses the take that finds it due gives that room back and takes
    it again, and the attempts ended, nothing is left held."""
    slow = _due(store, A, "slow.example.com:443", 2)
    assert store.take(NOW, 8).members == slow  # A's receiver full; then this process dies
    theirs = _due(store, B, "b.example.com:443", 1, at=NOW)
    assert other_process.take(NOW + 1, 8).members == theirs  # the second key goes meanwhile
    ended(other_process, theirs[0])
    assert other_process.take(NOW + ATTEMPT_LEASE - 1, 8).members == []  # A's attempts are still theirs
    assert other_process.take(NOW + ATTEMPT_LEASE + 1, 8).members == slow  # lapsed: their room back, due again
    busy = store.connection.hmget(KEYS.notify_busy, f"r:{A}|slow.example.com:443", f"o:{A}", f"o:{B}")
    assert busy == [b"2", b"2", None]
    for member in slow:
        ended(other_process, member)
    assert not store.connection.exists(KEYS.notify_busy)


def test_a_message_sent_again_while_its_attempt_is_under_way_waits_for_its_lease_not_behind_its_full_receiver(
        store, other_process):
    """A replay of a message whose receiver its own attempt fills is not parked (nothing would bring it back were its
    process to die): it waits for that attempt's end, due at its lease; its process dead, it goes again then."""
    slow = _due(store, A, "slow.example.com:443", 2)
    assert store.take(NOW, 8).members == slow  # then this process dies
    store.connection.zadd(KEYS.notify_due, {slow[0]: NOW + 1})  # sent again meanwhile
    assert other_process.take(NOW + 2, 8).members == []
    assert store.connection.zscore(KEYS.notify_due, slow[0]) == NOW + ATTEMPT_LEASE
    assert store.connection.zcard(KEYS.notify_parked) == 0
    assert other_process.take(NOW + ATTEMPT_LEASE + 1, 8).members == slow
    assert store.connection.hget(KEYS.notify_busy, f"r:{A}|slow.example.com:443") == b"2"


def test_a_deleted_job_s_message_whose_process_died_mid_attempt_has_its_room_back_at_its_lease(store):
    messages = [Message(id=f"msg_job_{n}", job_id=f"job_{n}", owner=A, event="job.ended", kind="webhook",
                        host="slow.example.com:443", target="t") for n in range(3)]
    add_due(store, [(message, NOW - 10 + n) for n, message in enumerate(messages)])
    assert store.take(NOW, 8).members == [messages[0].member, messages[1].member]  # then this process dies
    store.forget_job("job_0", 0)
    # Its room back at its lease, the one parked behind it first, then taken again: its attempt finds its message
    # gone and ends it (deliver's finish), and the other lapsed one goes.
    assert store.take(NOW + ATTEMPT_LEASE + 1, 8).members == [messages[2].member, messages[0].member]
    ended(store, messages[0].member)
    assert store.take(NOW + ATTEMPT_LEASE + 1, 8).members == [messages[1].member]
    ended(store, messages[1].member)
    ended(store, messages[2].member)
    assert not store.connection.exists(KEYS.notify_busy) and store.connection.zcard(KEYS.notify_due) == 0

