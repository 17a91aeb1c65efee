"""What BFL's stated prices showed of each model's catalog entry, in Redis (see ``fluxhook.credits.budget``):
a model BFL has not yet priced within its entry's bound, or has priced above it, is not bounded by it, and its
requests go alone until BFL prices one within it (a corrected entry starts again)."""

from __future__ import annotations

import time
from enum import Enum

from redis import Redis

from fluxhook.store.keys import KEYS, Keys

# How often a process writes again that a model's catalog entry was priced within its bound.
WITHIN_REWRITE = 60.0


class PriceCheck(str, Enum):
    """What BFL's stated prices showed of a model's catalog entry."""

    UNSEEN = "unseen"  # no price of BFL's for this very entry yet
    WITHIN = "within"  # BFL priced a request within the entry's bound
    OVER = "over"  # BFL charged more than the entry bounds: until the entry is corrected


class PriceChecks:
    """Per model, the catalog entry (a fingerprint of its price rule) BFL was seen to price within, and the one it
    was seen to exceed: a corrected entry has another fingerprint, so it is unseen again."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        # (model, fingerprint) -> when this process last wrote that BFL priced it within (time.monotonic()).
        self._within_written: dict[tuple[str, str], float] = {}

    def check(self, model: str, fingerprint: str) -> PriceCheck:
        """What BFL's prices showed of this very catalog entry of ``model`` (one round trip)."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.hget(self.keys.prices_over_catalog, model)
        pipe.hget(self.keys.prices_within_catalog, model)
        over, within = pipe.execute()
        if over == fingerprint.encode():
            return PriceCheck.OVER
        return PriceCheck.WITHIN if within == fingerprint.encode() else PriceCheck.UNSEEN

    def mark_over(self, model: str, fingerprint: str) -> None:
        """BFL charged more than the catalog entry ``fingerprint`` of ``model`` bounds."""
        self.connection.hset(self.keys.prices_over_catalog, model, fingerprint)

    def mark_within(self, model: str, fingerprint: str) -> None:
        """BFL priced a request of ``model`` within its catalog entry ``fingerprint``'s bound (an entry seen
        exceeded stays so: ``check`` reads that first). Written at most once per ``WITHIN_REWRITE`` seconds by a
        process, as nearly every submission says it again (and again after a while, in case Redis lost it)."""
        written = self._within_written.get((model, fingerprint))
        if written is not None and time.monotonic() - written < WITHIN_REWRITE:
            return
        self.connection.hset(self.keys.prices_within_catalog, model, fingerprint)
        self._within_written[(model, fingerprint)] = time.monotonic()
