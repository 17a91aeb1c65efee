"""fluxhook/store/batch_turns.py on a real Redis: turns to make a batch go to the keys in turns (docs/fair-share.md's rule,
weights included, a turn costing its batch's items), each key's waiters in the order they came; whoever gives a turn
wakes its waiter; a maker or a waiter whose process died stops counting once its lease ends. Two keys in each test:
what one key does, and what the other sees."""

from __future__ import annotations

import threading
import time

import pytest

from fluxhook.store.batch_turns import BatchTurns, Rules, Ticket
from fluxhook.store.keys import KEYS

# One batch at a time, whatever its size: the order of turns alone.
ONE = Rules(items_at_once=1, lease=15.0)
# A batch of the largest size and small ones beside it.
BESIDE = Rules(items_at_once=12_000, lease=15.0)


@pytest.fixture()
def turns(connection) -> BatchTurns:
    return BatchTurns(connection)


def _order(turns: BatchTurns, holder: Ticket, waiters: dict[str, Ticket], now: float) -> list[str]:
    """The names of ``waiters`` in the order their turns come, each turn ended as soon as it is given."""
    by_member = {ticket.member: name for name, ticket in waiters.items()}
    order, current = [], holder
    for _ in waiters:
        turns.end(current, now, ONE)
        (member,) = turns.holders()
        order.append(by_member[member])
        current = waiters[by_member[member]]
    turns.end(current, now, ONE)
    return order


def test_a_keys_flood_waits_behind_another_keys_batch_and_each_keys_batches_keep_their_order(turns):
    now = time.time()
    first = turns.join("key_a", 10_000, now, ONE)
    assert first.holds  # a free turn: taken at once
    a = {f"a{n}": turns.join("key_a", 10_000, now, ONE) for n in range(1, 4)}
    b = {"b1": turns.join("key_b", 3, now + 1, ONE), "b2": turns.join("key_b", 3, now + 1, ONE)}
    assert not any(t.holds for t in (*a.values(), *b.values()))
    assert turns.holders() == [first.member] and len(turns.waiters()) == 5

    # B came after A's flood, and goes before the rest of it; each key's own in the order they came.
    assert _order(turns, first, {**a, **b}, now + 2) == ["b1", "b2", "a1", "a2", "a3"]
    assert turns.holders() == [] and turns.waiters() == []


def test_another_keys_small_batch_is_made_beside_a_large_one_and_each_key_makes_one_at_a_time(turns):
    now = time.time()
    a = turns.join("key_a", 10_000, now, BESIDE)
    a_next = turns.join("key_a", 10, now, BESIDE)  # small, but A's: after A's own
    b = turns.join("key_b", 3, now, BESIDE)
    b_next = turns.join("key_b", 3, now, BESIDE)
    c = turns.join("key_c", 10_000, now, BESIDE)  # would pass the items made at once
    c_small = turns.join("key_c", 5, now, BESIDE)  # behind C's own large one
    assert (a.holds, a_next.holds, b.holds, b_next.holds, c.holds) == (True, False, True, False, False)
    assert set(turns.holders()) == {a.member, b.member}

    # C's turn comes before B's next (B was charged for its first), and C's does not fit beside A's: B's next waits
    # behind it, so that small batches never pass a large one over for ever.
    turns.end(b, now, BESIDE)
    assert turns.holders() == [a.member]
    turns.end(a, now, BESIDE)  # then C's, and beside it B's next and A's small one, each key's one at a time
    assert set(turns.holders()) == {c.member, b_next.member, a_next.member} and turns.waiters() == [c_small.member]
    turns.end(c, now, BESIDE)
    assert set(turns.holders()) == {b_next.member, a_next.member, c_small.member} and turns.waiters() == []


def test_turns_between_keys_follow_their_weights(turns, connection):
    connection.hset(KEYS.share_weights, "key_heavy", 2)  # as app_keys writes a key's weight
    now = time.time()
    holder = turns.join("key_other", 100, now, ONE)
    heavy = {f"h{n}": turns.join("key_heavy", 100, now, ONE) for n in range(6)}
    light = {f"l{n}": turns.join("key_light", 100, now, ONE) for n in range(3)}

    order = _order(turns, holder, {**heavy, **light}, now)
    # Two turns of the heavy key for each of the light one's (ties go to the one that came first).
    assert order == ["h0", "l0", "h1", "h2", "l1", "h3", "h4", "l2", "h5"]


def test_a_turn_costs_its_batchs_items_so_a_small_batch_goes_before_a_large_one_of_a_key_served_as_much(turns):
    now = time.time()
    holder = turns.join("key_a", 10_000, now, ONE)
    turns.end(holder, now, ONE)  # A had one large turn
    holder = turns.join("key_c", 1, now, ONE)  # someone else's turn is being made
    a = turns.join("key_a", 10_000, now, ONE)
    b = turns.join("key_b", 3, now, ONE)
    b_again = turns.join("key_b", 3, now, ONE)
    assert _order(turns, holder, {"a": a, "b": b, "b again": b_again}, now) == ["b", "b again", "a"]


def test_the_waiter_given_a_turn_is_woken_by_whoever_gave_it_and_no_other_is(turns, connection):
    now = time.time()
    holder = turns.join("key_a", 10, now, ONE)
    b = turns.join("key_b", 3, now, ONE)
    a = turns.join("key_a", 10, now, ONE)
    woken: list[tuple[str, bool, float]] = []

    def wait(name: str, ticket: Ticket) -> None:
        started = time.monotonic()
        woken.append((name, turns.wait(ticket, 3.0), time.monotonic() - started))  # within the socket's 5 s

    waiters = [threading.Thread(target=wait, args=args) for args in (("b", b), ("a", a))]
    for thread in waiters:
        thread.start()
    time.sleep(0.2)  # both blocked on their wake-ups (nothing to wait on: no wake-up may come yet)
    assert turns.end(holder, now, ONE) == [b.member]  # another process's maker ends: B's turn, and B's wake-up
    for thread in waiters:
        thread.join(timeout=10)
    assert [(name, got) for name, got, _ in woken] == [("b", True), ("a", False)]
    assert woken[0][2] < 1.0 and woken[1][2] >= 2.5  # B woke at once; A waited out its timeout
    assert turns.holders() == [b.member] and turns.look(a, now, ONE).holds is False


def test_a_dead_makers_turn_lapses_and_the_next_look_of_any_waiter_gives_it_on(turns):
    now = time.time()
    dead = turns.join("key_a", 10, now - 20, ONE)  # its process died 20 s ago, its lease was 15 s
    b = turns.join("key_b", 3, now - 19, ONE)
    assert dead.holds and not b.holds
    assert turns.look(b, now - 6, ONE).holds is False  # the dead one's lease has a second to go
    assert turns.look(b, now, ONE).holds is True
    assert turns.holders() == [b.member] and turns.waiters() == []


def test_a_dead_waiter_leaves_the_line_and_one_that_looks_again_keeps_its_place(turns):
    now = time.time()
    holder = turns.join("key_c", 1, now, ONE)
    dead = turns.join("key_a", 5, now, ONE)  # its process dies now: it never looks again
    slow = turns.join("key_b", 5, now, ONE)  # its process stalls past its lease, then looks
    later = turns.join("key_b", 5, now + 1, ONE)
    turns.end(holder, now + 10.5, ONE)  # both leases ended: the next turn goes to B's later waiter
    assert turns.holders() == [later.member] and dead.member not in turns.waiters()
    assert slow.member not in turns.waiters()

    assert turns.look(slow, now + 12, ONE).holds is False  # back in line, ahead of B's next
    after = turns.join("key_b", 5, now + 12, ONE)
    assert turns.waiters() == [slow.member, after.member]
    turns.end(later, now + 13, ONE)
    assert turns.holders() == [slow.member]


def test_a_waiter_that_gives_up_leaves_its_place_unless_its_turn_came_first(turns):
    now = time.time()
    holder = turns.join("key_a", 10, now, ONE)
    b = turns.join("key_b", 3, now, ONE)
    c = turns.join("key_c", 3, now, ONE)
    assert turns.leave(c, now, ONE) is False and turns.waiters() == [b.member]
    turns.end(holder, now, ONE)  # B's turn comes as B gives up
    assert turns.leave(b, now, ONE) is True and turns.holders() == [b.member]  # B holds it, and must end it
    turns.end(b, now, ONE)
    assert turns.holders() == [] and turns.waiters() == []
