"""Turns to make a batch, over every web process (docs/api.md "made in turns between keys", ``lua/batch_turns.lua``).

Making a batch of 10,000 items keeps a core and much of Redis busy for seconds, so only so many items are made at once
(``lifecycle.batching.MAKING_ITEMS_AT_ONCE``: one batch of the largest size and small ones beside it), and at most one
batch of each key. The requests waiting for a turn wait in one line in Redis, and turns go to them in turns between
owners, weights included (the slots' rule, ``lua/fair_turns.lua``), each owner's waiters in the order they came, a
turn costing its batch's items: one key's flood of batches delays another key's small batch by nothing (it is made
beside the flood's batch being made), and another key's large one by at most that batch.

A waiter does not poll: it blocks on a list of its own (``Keys.batch_turn_wake``) that whoever gives it its turn
pushes to (the maker whose turn ended, or another waiter's look), and looks at the line itself only every
``LOOK_EVERY`` s, as a safety net (a push lost with its process) and to renew its lease. A waiter or a maker whose
process died stops counting once its lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from redis import Redis

from fluxhook.core.holds import WAITER_LEASE, WAKE_KEPT
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT, owner_of
from fluxhook.store.scripts import LuaScript, text


@dataclass(frozen=True)
class Rules:
    """How turns are given: batches of at most ``items_at_once`` items all told made at once over every process (any
    one batch when none is), at most one of each owner; each turn a lease of ``lease`` s."""

    items_at_once: int
    lease: float


@dataclass(frozen=True)
class Ticket:
    """A request's place for a turn: its member in the line (``<owner>:<seq>.<items>``), and whether it holds a turn
    now."""

    member: str
    holds: bool


class _Step(NamedTuple):
    """What one step of the script did: the caller's ticket, and the other waiters it gave a turn (now woken)."""

    ticket: Ticket
    given: list[str]


class BatchTurns:
    """The turns to make a batch and the line of those waiting for one, on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._turns = LuaScript(connection, "batch_turns")

    def join(self, key_id: str | None, items: int, now: float, rules: Rules) -> Ticket:
        """A new waiter for a turn to make a batch of ``items`` items for app key ``key_id`` (None: an admin token's),
        last of its owner's (``owners.owner_of``); it holds the turn at once if one is free and its turn comes
        first."""
        return self._run("join", now, rules, owner_of(key_id), items).ticket

    def look(self, ticket: Ticket, now: float, rules: Rules) -> Ticket:
        """The waiter ``ticket`` waits on (its lease renewed; a waiter dropped as dead comes back at its place):
        whether it holds a turn now. Turns whose makers died are given on meanwhile."""
        return self._run("look", now, rules, ticket.member).ticket

    def leave(self, ticket: Ticket, now: float, rules: Rules) -> bool:
        """The waiter gives up its place: False; True (and nothing given up) if its turn came meanwhile, which it
        then holds and must ``end``."""
        return self._run("leave", now, rules, ticket.member).ticket.holds

    def end(self, ticket: Ticket, now: float, rules: Rules) -> list[str]:
        """The turn (or the place in line) of ``ticket`` ends; the turns it frees go to the next waiters: their
        members."""
        return self._run("end", now, rules, ticket.member).given

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block until the waiter's turn is given (True: a wake-up came) or ``timeout`` s pass (False). The
        connection's socket timeout must be longer than ``timeout``."""
        return self.connection.blpop([self.keys.batch_turn_wake(ticket.member)], timeout=timeout) is not None

    def holders(self) -> list[str]:
        """The members holding a turn now (their leases not yet ended)."""
        return [text(m) for m in self.connection.zrange(self.keys.batches_making, 0, -1)]

    def waiters(self) -> list[str]:
        """The members waiting for a turn, each owner's in the order they came, owners in their ids' order."""
        return [text(m) for m in self.connection.zrange(self.keys.batch_turn_line, 0, -1)]

    def _run(self, op: str, now: float, rules: Rules, member_or_owner: str, items: int = 0) -> _Step:
        k = self.keys
        member, holds, turned = self._turns(
            [k.batches_making, k.batch_turn_line, k.batch_turn_waiting, k.batch_turn_passes, k.share_weights],
            [op, int(now * 1000), rules.items_at_once, int(rules.lease * 1000), int(WAITER_LEASE * 1000),
             DEFAULT_WEIGHT, member_or_owner, items, int(max(rules.lease, 1) * 1000)])
        member = text(member)
        # Wake each other waiter given a turn (the caller knows its own); one woken by nobody (this process died
        # here) finds its turn at its next look.
        others = [m for m in map(text, turned) if m != member]
        if others:
            pipe = self.connection.pipeline(transaction=False)
            for woken in others:
                pipe.lpush(k.batch_turn_wake(woken), 1)
                pipe.pexpire(k.batch_turn_wake(woken), int(WAKE_KEPT * 1000))
            pipe.execute()
        return _Step(Ticket(member, bool(holds)), others)
