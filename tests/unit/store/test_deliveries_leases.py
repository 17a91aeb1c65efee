"""An attempt's end against its lease (fluxhook/store/deliveries.py ``record``/``finish``, lua/notify_finish.lua) on a
real Redis: an attempt that outlived its lease, its message taken again by another process, ends without touching the
newer attempt's note, its receiver's count or its due time, and another key's receiver sees nothing of it; its answer
is kept, a 2xx as the message delivered, which the newer attempt's end keeps. And a notifier at rest waits for no lease
of its own attempts (``rest``). Two ``Deliveries`` on two connections stand for two worker processes."""

from __future__ import annotations

import pytest

from fluxhook.core.holds import ATTEMPT_LEASE
from fluxhook.store.deliveries import DELIVERED, IN_FLIGHT, PENDING, PER_RECEIVER, Deliveries, Message
from fluxhook.store.keys import KEYS
from notify_helpers import add_due, ended

NOW = 1_800_000_000.0
LAPSED = NOW + ATTEMPT_LEASE + 1  # when another process finds the first attempt's lease lapsed
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"
SLOW, OTHER = "slow.example.com:443", "b.example.com:443"


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _messages(store: Deliveries, owner: str, host: str, count: int, at: float, first: int = 0) -> list[Message]:
    """``count`` messages of ``owner`` to ``host``, kept and due from ``at`` a millisecond apart."""
    messages = [Message(id=f"msg_{owner}_{n}", job_id=f"job_{owner}_{n}", owner=owner, event="job.ended",
                        kind="webhook", host=host, target="t") for n in range(first, first + count)]
    add_due(store, [(message, at + n / 1000) for n, message in enumerate(messages)])
    return messages


def _busy(store: Deliveries) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in store.connection.hgetall(KEYS.notify_busy).items()}


def _retaken(store: Deliveries, other_process: Deliveries):
    """A's message taken at NOW, then (its process stalled past its lease) taken again by another process, B's beside
    it: the stalled attempt, the newer one and B's, each as its take handed it out."""
    [message] = _messages(store, A, SLOW, 1, NOW - 10)
    [stalled] = store.take(NOW, 8).attempts
    _messages(store, B, OTHER, 1, LAPSED - 1)
    taken = other_process.take(LAPSED, 8).attempts
    [newer] = [a for a in taken if a.member == message.member]
    [theirs] = [a for a in taken if a.member != message.member]
    assert newer.lease != stalled.lease
    return message, stalled, newer, theirs


def test_a_stale_end_leaves_the_newer_attempt_s_note_and_its_receiver_s_count_and_another_key_s_alone(
        store, other_process):
    message, stalled, newer, theirs = _retaken(store, other_process)
    held = _busy(store)
    assert held[IN_FLIGHT + message.member] == newer.lease and held[f"r:{A}|{SLOW}"] == "1"

    assert not store.finish(stalled)  # the stalled attempt ends: the message is not its any more
    assert not store.record(stalled, message, (NOW + 70, 503, None, 70_000), PENDING, LAPSED + 30)
    assert _busy(store) == held  # the newer attempt's note, A's and B's counts, as they were
    assert store.connection.zscore(KEYS.notify_due, message.member) == float(newer.lease)
    assert store.connection.zscore(KEYS.notify_due, theirs.member) == float(theirs.lease)

    # The count is still real: with the newer attempt in flight, A's receiver takes one more, not two.
    more = _messages(store, A, SLOW, 2, LAPSED, first=1)
    assert store.take(LAPSED + 1, 8).members == [more[0].member]
    assert _busy(store)[f"r:{A}|{SLOW}"] == str(PER_RECEIVER)
    assert store.connection.zcard(KEYS.notify_parked) == 1
    # The newer attempt's own end gives its room back, and the one parked behind it goes.
    assert other_process.finish(newer)
    assert store.take(LAPSED + 2, 8).members == [more[1].member]
    for member in (more[0].member, more[1].member, theirs.member):
        assert ended(store, member)
    assert not store.connection.exists(KEYS.notify_busy)


def test_a_stale_2xx_is_kept_as_delivered_and_the_newer_attempt_s_retry_does_not_send_it_again(store, other_process):
    message, stalled, newer, _ = _retaken(store, other_process)
    assert not store.record(stalled, message, (NOW + 70, 200, None, 70_000), DELIVERED, None)
    kept = store.get(message.id)
    assert kept.state == DELIVERED and [a[1] for a in kept.attempts] == [200] and kept.tries == 0
    # Still the newer attempt's hold until it ends: due at its lease, its note in place.
    assert store.connection.zscore(KEYS.notify_due, message.member) == float(newer.lease)
    assert _busy(store)[IN_FLIGHT + message.member] == newer.lease

    # The newer attempt (under way since before) is answered 503: its end gives the room back, and the message stays
    # delivered with nothing due.
    assert other_process.record(newer, kept, (LAPSED, 503, None, 5), PENDING, LAPSED + 30)
    kept = store.get(message.id)
    assert kept.state == DELIVERED and [a[1] for a in kept.attempts] == [200, 503] and kept.count == 2
    assert store.connection.zscore(KEYS.notify_due, message.member) is None
    assert IN_FLIGHT + message.member not in _busy(store) and f"r:{A}|{SLOW}" not in _busy(store)


def test_a_stale_2xx_after_the_newer_attempt_set_a_retry_takes_the_message_out_of_the_due_set(store, other_process):
    message, stalled, newer, _ = _retaken(store, other_process)
    assert other_process.record(newer, message, (LAPSED, 500, None, 5), PENDING, LAPSED + 30)
    assert not store.record(stalled, store.get(message.id), (NOW + 70, 200, None, 70_000), DELIVERED, None)
    assert store.get(message.id).state == DELIVERED
    assert store.connection.zscore(KEYS.notify_due, message.member) is None  # no retry of a delivered message


def test_a_stale_failure_is_kept_as_an_attempt_and_the_newer_attempt_settles_the_message(store, other_process):
    message, stalled, newer, _ = _retaken(store, other_process)
    assert not store.record(stalled, message, (NOW + 70, None, "timeout", 15_000), PENDING, LAPSED + 5)
    kept = store.get(message.id)
    assert kept.state == PENDING and kept.tries == 0 and kept.count == 1  # its retry is the newer attempt's to time
    assert store.connection.zscore(KEYS.notify_due, message.member) == float(newer.lease)
    assert other_process.record(newer, kept, (LAPSED, 200, None, 5), DELIVERED, None)
    kept = store.get(message.id)
    assert kept.state == DELIVERED and kept.tries == 1 and [a[2] for a in kept.attempts] == ["timeout", None]
    assert store.connection.zscore(KEYS.notify_due, message.member) is None


def test_an_end_told_after_the_lease_lapsed_with_no_take_since_is_still_the_attempt_s_own(store):
    [message] = _messages(store, A, SLOW, 1, NOW - 10)
    [late] = store.take(NOW, 8).attempts
    assert store.record(late, message, (NOW + 90, 200, None, 90_000), DELIVERED, None)
    assert store.get(message.id).state == DELIVERED and not store.connection.exists(KEYS.notify_busy)
    assert not store.finish(late)  # told twice: nothing more


def test_a_notifier_at_rest_waits_for_another_process_s_lease_never_for_its_own(store, other_process):
    mine, theirs = _messages(store, A, SLOW, 1, NOW - 10)[0], _messages(store, B, OTHER, 1, NOW - 5)[0]
    attempts = store.take(NOW, 8).attempts
    lease = float(attempts[0].lease)
    # Its own attempts under way: nothing it waits for (their ends wake a notifier for what they make due); the guard
    # still watches from the earliest entry, so that their entries are no lost wake-up to it.
    rest = store.rest(attempts)
    assert rest.due is None and rest.watched.earlier == ((KEYS.notify_due, lease), (KEYS.outbox, lease))
    # Another process's attempt under way: its lease is waited for (that process may die).
    assert store.rest([a for a in attempts if a.member == mine.member]).due == lease
    assert other_process.rest().due == lease
    ended(store, theirs.member, NOW + 30)  # a retry: due before the lease, waited for
    assert store.rest([a for a in attempts if a.member == mine.member]).due == NOW + 30
