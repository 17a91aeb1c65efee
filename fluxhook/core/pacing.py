"""Sends paced by what storage keeps (pure): the rule that says whether a send to BFL may go now, from the backlog of
results BFL has finished that fluxhook has not stored yet and the rate fluxhook stored them at over the last minute.

BFL keeps a result's URL for a while only (10 minutes for an image); a result whose download starts after that is
paid for and lost. So a send is admitted only while the backlog can be stored, at the rate storage has kept up, within
a share of the shortest URL life (``STORE_PACING_SHARE``, half by default): the room left covers the results still
at BFL and a rate that falls. Below a few results per download lane (``STORE_PACING_FLOOR``) nothing is judged: a
cold start has no rate yet, and a small backlog drains before any URL could lapse.

Batch items wait first; single jobs (someone waits for each) wait only once the backlog passes halfway from the
bound to the whole life: the one ordering rule (a key's single jobs before its batch items) holds here too, and a
single job's result still lands well inside its URL's life.

``store/lua/store_pacing.lua`` applies the same rule in Redis; a test holds the two to the same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The rate is what storage kept over this many seconds (all workers together).
RATE_WINDOW = 60
# What the stored counts are kept by: one count per bucket of this many seconds (a process tallies its own and writes
# them every few seconds, so the newest bucket is always a little short: the rate errs low, the careful way).
RATE_BUCKET = 5
# The least span a rate is taken over: one bucket, so a first burst of stores does not read as a rate for ever.
MIN_SPAN = RATE_BUCKET


@dataclass(frozen=True)
class PacingRule:
    """The setting's share of the shortest URL life the backlog may take to store (0: pacing off), that life (s), and
    the backlog below which nothing is judged."""

    share: float
    shortest_life: float
    floor: int

    @property
    def bound(self) -> float:
        """The seconds of storing the backlog may hold."""
        return self.share * self.shortest_life

    @property
    def single_bound(self) -> float:
        """The seconds of storing past which single jobs wait too: halfway from the bound to the whole life."""
        return (self.share + 1) / 2 * self.shortest_life

    @property
    def on(self) -> bool:
        return self.share > 0


@dataclass(frozen=True)
class Backlog:
    """The results BFL finished that fluxhook has not stored (``waiting``), and what storage kept in the last
    ``RATE_WINDOW`` seconds: ``stored`` results over ``span`` seconds (0: none kept)."""

    waiting: int
    stored: int = 0
    span: float = 0.0

    @property
    def rate(self) -> float:
        """Results stored a second (0 with none stored)."""
        return self.stored / max(self.span, MIN_SPAN) if self.stored > 0 else 0.0

    @property
    def seconds(self) -> float:
        """How long storing the backlog takes at the rate (0 with none; infinite with none stored of late)."""
        if self.waiting <= 0:
            return 0.0
        return self.waiting / self.rate if self.rate > 0 else math.inf


# What waits for storage: nothing, batch items, or every send.
NONE, BULK, ALL = "", "bulk", "all"


def holds(rule: PacingRule, backlog: Backlog) -> bool:
    """Whether new sends of batch items wait for storage: pacing on, the backlog at its floor or past it, and storing
    it would take the whole bound or more."""
    if not rule.on or backlog.waiting < rule.floor:
        return False
    return backlog.seconds >= rule.bound


def level(rule: PacingRule, backlog: Backlog) -> str:
    """What waits for storage: ``ALL`` past the single jobs' bound, ``BULK`` (batch items) past the bound, else
    ``NONE``."""
    if not holds(rule, backlog):
        return NONE
    return ALL if backlog.seconds >= rule.single_bound else BULK
