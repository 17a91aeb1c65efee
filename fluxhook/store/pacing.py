"""Sends paced by storage, in Redis: the stored counts sends are paced by, and the mark that holds new sends back
while the backlog of results not yet stored is too long to store before their URLs lapse (``core.pacing``'s rule,
applied by ``lua/store_pacing.lua``).

What it costs: a stored result adds nothing to its own step; its count is tallied by its process
(``effects.CountStored``) and written with the process's other counts every few seconds. The backlog is the ready
jobs' index's size, which the job's moves keep already. Each worker's sweep reads that size every few seconds
(``LOOK_EVERY``; each second while its last judgement held sends back, ``Pacer.judging``, or the backlog was near the
floor, ``Pacer.near``) and judges only at the floor or past it, or while it held them (to lift the mark); the slot
scripts read the mark in the one look they make for cooldowns and pauses, so a send costs nothing more while no mark
is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from fluxhook.core import job as st
from fluxhook.core.pacing import ALL, BULK, MIN_SPAN, NONE, RATE_WINDOW, Backlog, PacingRule
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript, text

# How often a sweep reads the backlog while sends go (it reads it at each sweep while they wait, to lift the mark as
# soon as storage catches up): the most sends that go past the bound are this long's, a small part of the bound's
# minutes, for a command every few seconds rather than each second.
LOOK_EVERY = 5.0
# How long the mark holds sends back unless judged again: a pacer that died holds nothing longer (the dispatchers'
# own wait then bounds how late the held jobs go).
HELD_GUARD = 10.0


@dataclass(frozen=True)
class Judged:
    """One reading: what waits for storage (``core.pacing``'s ``NONE``, ``BULK``, ``ALL``), the backlog it read, and
    when batch items may go again (None: unknown, or none wait)."""

    level: str
    backlog: Backlog
    until: float | None = None

    @property
    def holds(self) -> bool:
        return self.level != NONE


class Pacer:
    """Storage's pacing of sends, on one connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._script = LuaScript(connection, "store_pacing")
        # Whether this process's last judgement held sends back: it judges again below the floor, to lift the mark.
        self.judging = False
        # Whether its last look found the backlog near its floor: it looks each second then, so a fast BFL does not
        # pile a few seconds of results past the floor before the first judgement.
        self.near = False
        self._next_look = 0.0

    def looks(self, now: float) -> bool:
        """Whether the sweep at ``now`` reads the backlog: each sweep while this process holds sends back or the
        backlog is near its floor, else every ``LOOK_EVERY`` seconds."""
        if not (self.judging or self.near) and now < self._next_look:
            return False
        self._next_look = now + LOOK_EVERY
        return True

    def waiting(self, pipe) -> None:
        """Queue on ``pipe`` the read of the backlog's size (the ready jobs): one command."""
        pipe.zcard(self.keys.status(st.READY))

    def judge(self, now: float, rule: PacingRule) -> Judged:
        """Set the mark (sends wait) or lift it (a dispatcher woken in the same step), by ``rule``."""
        judged = self._run(now, rule, judge=True)
        self.judging = judged.holds
        return judged

    def read(self, now: float, rule: PacingRule) -> Judged:
        """The backlog and the rate now, as a judgement would find them; nothing written."""
        return self._run(now, rule, judge=False)

    def level_now(self) -> str:
        """What waits for storage now (``NONE``, ``BULK``: batch items, ``ALL``), as the mark says."""
        mark = self.connection.get(self.keys.store_held)
        if mark is None:
            return NONE
        parts = text(mark).split("|")
        return parts[3] if len(parts) > 3 and parts[3] in (BULK, ALL) else ALL

    def _run(self, now: float, rule: PacingRule, *, judge: bool) -> Judged:
        minute = int(now) // 60
        keys = [self.keys.status(st.READY), self.keys.stored_counts(minute), self.keys.stored_counts(minute - 1),
                self.keys.store_held, self.keys.slot_freed]
        args = [repr(now), repr(rule.share), repr(rule.shortest_life), rule.floor, int(HELD_GUARD * 1000), RATE_WINDOW,
                MIN_SPAN, "1" if judge else "0"]
        level, waiting, stored, span, until = self._script(keys, args)
        return Judged(text(level), Backlog(int(waiting), int(stored), float(text(span))),
                      float(text(until)) if text(until) else None)
