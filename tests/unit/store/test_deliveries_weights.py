"""The one rule of every line for notification attempts (lua/notify_take.lua, lua/notify_room.lua, lua/fair_turns.lua)
on a real Redis: keys take turns in proportion to their weight, and a key's messages go earliest deadline first (its
job's deadline when that comes before its due time, else its due time), whether ripe or parked behind a full
receiver; a message's deadline is kept on it and read back."""

from __future__ import annotations

from collections import Counter

import pytest

from fluxhook.store.deliveries import Deliveries, Message
from fluxhook.store.keys import KEYS
from notify_helpers import add_due, drain_commands, ended

NOW = 1_800_000_000.0
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"
SLOW = "slow.example.com:443"
# Redis commands 100 messages of each of two keys cost before keys took turns by weight (each to a receiver of its
# own, taken two at a time, each attempt's end letting the next go), scripts' own loading aside.
TWO_KEYS_BEFORE = 4701


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _backlogs(store: Deliveries, count: int, owners: tuple[str, ...] = (A, B)) -> dict[str, list[str]]:
    """``count`` messages of each of ``owners``, each to a receiver of its own, the owners' due in turn a millisecond
    apart; their members by owner."""
    found: dict[str, list[str]] = {owner: [] for owner in owners}
    for n in range(count):
        for k, owner in enumerate(owners):
            message = Message(id=f"msg_{owner}_{n:04d}", job_id=f"job_{n}", owner=owner, event="job.ended",
                              kind="webhook", host=f"r{n}.example.com:443", target="t")
            found[owner] += add_due(store, [(message, NOW - 10 + (2 * n + k) / 1000)])
    return found


def _served(store: Deliveries, steps: int) -> Counter:
    """``steps`` attempts taken one at a time, each ending before the next is taken: how many each owner had."""
    served: Counter = Counter()
    for _ in range(steps):
        [member] = store.take(NOW, 1).members
        served[member.split("|")[0]] += 1
        ended(store, member)
    return served


def test_a_key_of_weight_3_gets_three_attempts_to_each_of_a_key_of_weight_1(store, connection):
    _backlogs(store, 60)
    connection.hset(KEYS.share_weights, A, 3)
    served = _served(store, 40)
    assert abs(served[A] - 30) <= 1 and abs(served[B] - 10) <= 1, served


def test_keys_of_no_weight_take_turns_whatever_their_messages_due_times(store):
    # A's whole backlog is due before B's first: B's messages still take every other attempt.
    mine = _backlogs(store, 30, (A,))[A]
    late = Message(id="msg_late", job_id="job_late", owner=B, event="job.ended", kind="webhook", host=SLOW, target="t")
    [theirs] = add_due(store, [(late, NOW - 1)])
    assert store.take(NOW, 4).members[:2] == [mine[0], theirs]


def _ranked(store: Deliveries, deadlines: dict[str, tuple[float, float | None]]) -> dict[str, str]:
    """Messages of A to one receiver, by name: (due, job's deadline); their members by name."""
    messages = [(Message(id=f"msg_{name}", job_id=f"job_{name}", owner=A, event="job.ended", kind="webhook", host=SLOW,
                         target="t", deadline=deadline), at) for name, (at, deadline) in deadlines.items()]
    return dict(zip(deadlines, add_due(store, messages), strict=True))


# Due times and deadlines: y's deadline comes before everyone's due time; z's after its own due time, so z goes by
# its due time; x and w have none.
DEADLINES = {"x": (NOW - 10, None), "y": (NOW - 5, NOW - 20), "z": (NOW - 7, NOW + 100), "w": (NOW - 9, None)}
BY_DEADLINE = ["y", "x", "w", "z"]


def test_a_key_s_ripe_messages_go_earliest_deadline_first(store):
    members = _ranked(store, DEADLINES)
    taken = []
    for _ in members:
        [member] = store.take(NOW, 1).members
        taken.append(member)
        ended(store, member)
    assert taken == [members[name] for name in BY_DEADLINE]


def test_a_key_s_messages_parked_behind_its_receiver_come_back_earliest_deadline_first_and_due_at_once(store,
                                                                                                       connection):
    first = _ranked(store, {"first": (NOW - 30, None), "second": (NOW - 30, None)})
    held = store.take(NOW, 8).members
    assert held == list(first.values())
    members = _ranked(store, DEADLINES)
    assert store.take(NOW, 8).members == []  # all parked behind the full receiver
    taken = []
    while held:
        ended(store, held.pop(0))
        got = store.take(NOW, 8).members
        held += got
        taken += got
    assert taken == [members[name] for name in BY_DEADLINE]
    assert not connection.exists(KEYS.notify_parked)


def test_a_message_s_deadline_is_kept_on_it_and_marks_its_member(store):
    members = _ranked(store, {"y": (NOW, NOW - 20.25)})
    message = store.get("msg_y")
    assert message.deadline == NOW - 20.25 and message.member == members["y"]
    assert members["y"] == f"{A}|{SLOW}|@{NOW - 20.25:.3f}|msg_y"


def test_two_keys_messages_cost_no_more_commands_than_before_keys_took_turns_by_weight(store, connection):
    _backlogs(store, 100)
    sent = drain_commands(store, connection, NOW)
    assert len(sent) <= TWO_KEYS_BEFORE, len(sent)
