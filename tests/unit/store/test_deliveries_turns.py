"""Turns between a key's end users for its notification attempts (lua/notify_room.lua, lua/notify_take.lua) on a real
Redis: one end user's hundreds of messages hold another's of the same key and receiver by one turn at most, whether
they wait ripe or parked behind the full receiver; another key takes its turns beside; a key naming no end user is
served as before, for no more commands than before; an older release's parked entries are taken, and it takes ours."""

from __future__ import annotations

import pytest

from fluxhook.store.deliveries import PER_RECEIVER, Deliveries, Message
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import tag
from notify_helpers import add_due, drain_commands, ended

NOW = 1_800_000_000.0
A, B = "key_aaaaaaaaaaaaaaaa", "key_bbbbbbbbbbbbbbbb"
SLOW, OTHER = "slow.example.com:443", "b.example.com:443"
# Redis commands 200 messages of one key through one receiver cost before keys took turns by weight (taken two at a
# time, each attempt's end letting the next go), scripts' own loading aside: with no end user, and with two.
COMMANDS_BEFORE = {(None,): 4384, ("flood", "calm"): 4974}


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _due(store: Deliveries, owner: str, count: int, at: float, *, end_user: str | None = None, host: str = SLOW,
         bulk: bool = False) -> list[str]:
    """``count`` messages of ``owner``'s ``end_user`` to ``host``, due from ``at`` a millisecond apart; their members."""
    name = end_user or "none"
    messages = [Message(id=f"msg_{owner}_{name}_{'b' if bulk else 's'}{n:04d}", job_id=f"job_{name}_{n}", owner=owner,
                        event="job.ended", kind="webhook", host=host, target="t", bulk=bulk, tag=tag(end_user))
                for n in range(count)]
    return add_due(store, [(message, at + n / 1000) for n, message in enumerate(messages)])


def _drain(store: Deliveries, held: list[str], steps: int) -> list[str]:
    """``steps`` times: the oldest attempt in ``held`` ends, and what its room lets go is taken; what was taken."""
    taken = []
    for _ in range(steps):
        ended(store, held.pop(0))
        got = store.take(NOW + 1, 8).members
        held += got
        taken += got
    return taken


def test_a_flooding_end_user_holds_another_s_ripe_message_by_one_turn_and_another_key_s_by_none_of_a(store):
    flood = _due(store, A, 100, NOW - 10, end_user="flood")
    theirs = _due(store, B, 1, NOW - 5, host=OTHER)
    [calm] = _due(store, A, 1, NOW - 1, end_user="calm")
    # Due after A's hundred, calm's message takes A's second turn: the receiver's second attempt; B's takes the turn
    # between A's, as a key's turns go.
    assert store.take(NOW, 8).members == [flood[0], theirs[0], calm]
    assert store.connection.zcard(KEYS.notify_parked) == 99


def test_an_end_user_s_message_parked_behind_a_flood_comes_back_at_the_next_turn(store):
    flood = _due(store, A, 100, NOW - 10, end_user="flood")
    held = store.take(NOW, 8).members
    assert held == flood[:PER_RECEIVER]
    # The flood is parked behind the full receiver; calm's message comes after it all, and is parked too.
    [calm] = _due(store, A, 1, NOW - 1, end_user="calm")
    assert store.take(NOW, 8).members == []
    # Of the next two attempts' room, calm's message takes one: it waits one turn of the flood's at most.
    assert sorted(_drain(store, held, 2)) == sorted([flood[2], calm])
    assert _drain(store, held, 3) == flood[3:6]


@pytest.mark.parametrize("second", ["calm", "aaaa", None])
def test_end_users_parked_behind_a_receiver_take_turns_each_in_its_own_order(store, second):
    # Whichever sorts first (calm's tag before or after flood's, or the key's messages of no end user), turns alternate.
    flood = _due(store, A, 6, NOW - 10, end_user="flood")
    held = store.take(NOW, 8).members
    singles = _due(store, A, 2, NOW - 5, end_user=second)
    items = _due(store, A, 2, NOW - 6, end_user=second, bulk=True)  # due first, yet after its end user's singles
    assert store.take(NOW, 8).members == []
    taken = _drain(store, held, 8)
    turns = [taken[0::2], taken[1::2]]
    assert sorted(turns) == sorted([flood[2:6], [*singles, *items]]), taken


def test_a_key_with_no_end_users_is_served_in_its_order_and_another_key_s_in_its_own(store):
    mine = _due(store, A, 5, NOW - 10, bulk=True)
    [single] = _due(store, A, 1, NOW - 8)
    theirs = _due(store, B, 3, NOW - 9, host=OTHER, end_user="flood")
    # The keys take turns, B first: its next message is due before A's next (its single job's).
    held = store.take(NOW, 8).members
    assert held == [theirs[0], single, mine[0], theirs[1]]
    assert store.connection.hkeys(KEYS.notify_busy) and not any(
        field.startswith(b"n:") for field in store.connection.hkeys(KEYS.notify_busy))
    assert _drain(store, held, 4) == [theirs[2], mine[1], mine[2]]


def test_an_older_release_s_parked_entries_take_their_turn_and_it_takes_ours(store, connection):
    flood = _due(store, A, 4, NOW - 10, end_user="flood")
    held = store.take(NOW, 8).members
    assert store.take(NOW, 8).members == []  # flood[2:] parked, in today's form
    # An older release parked a message of no end user: `<field>|<due>|<member>`.
    [older] = _due(store, A, 1, NOW - 20)
    connection.zrem(KEYS.notify_due, older)
    connection.zadd(KEYS.notify_parked, {f"r:{A}|{SLOW}|{NOW - 20:017.3f}|{older}": 0})
    assert _drain(store, held, 3) == [flood[2], older, flood[3]]
    # An older release's unpark (it knew no end users) reads an entry of ours as one of its own: due at once.
    [late] = _due(store, A, 1, NOW - 1, end_user="late")
    assert store.take(NOW + 1, 8).members == []
    older_unpark = """
      local prefix = ARGV[1] .. '|'
      local first = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. prefix, '(' .. prefix .. '\\255', 'LIMIT', 0, 1)[1]
      redis.call('ZREM', KEYS[2], first)
      local at, member = string.match(string.sub(first, #prefix + 1), '^([^|]*)|(.*)$')
      redis.call('ZADD', KEYS[1], 'NX', tonumber(at), member)
      return member"""
    assert connection.eval(older_unpark, 2, KEYS.notify_due, KEYS.notify_parked, f"r:{A}|{SLOW}").decode() == late
    assert connection.zscore(KEYS.notify_due, late) < NOW


def test_the_busy_hash_is_empty_once_every_attempt_has_ended(store, connection):
    flood = _due(store, A, 5, NOW - 10, end_user="flood")
    _due(store, A, 2, NOW - 5, end_user="calm")
    held = store.take(NOW, 8).members
    while held:
        ended(store, held.pop(0))
        held += store.take(NOW + 1, 8).members
    assert not connection.exists(KEYS.notify_busy) and not connection.exists(KEYS.notify_parked)
    assert connection.zcard(KEYS.notify_due) == 0 and flood


@pytest.mark.parametrize("end_users", [(None,), ("flood", "calm")])
def test_a_message_costs_no_more_commands_than_before_keys_took_turns_by_weight(store, connection, end_users):
    for n, end_user in enumerate(end_users):
        _due(store, A, 200 // len(end_users), NOW - 10 + n, end_user=end_user)
    sent = drain_commands(store, connection, NOW)
    assert len(sent) <= COMMANDS_BEFORE[end_users], len(sent)
