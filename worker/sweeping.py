"""The worker's sweep: a thread of every worker process that runs the fallback sweep (``lifecycle.sweep``) once a
second, until the process stops.

Every process runs one, so the sweep goes on however workers are scaled and whichever of them die. Sweeps side by
side are harmless: what a sweep hands on it first claims atomically, moved a lease ahead (due jobs, deadlines,
outbox members, messages due, moving work), so no two sweeps take the same thing, and what a sweep that died had
claimed comes due again once its lease is over. A thread, not an RQ task queued every second: the task's
queueing, RQ's records of it and a lane's turn cost Redis about seven times what the sweep itself does.
"""

from __future__ import annotations

import time

from fluxhook.core.live import SWEEP_INTERVAL
from fluxhook.lifecycle.sweep import sweep
from fluxhook.services import Services

from .loops import Loop

# How often the sweep runs (from the start of one to the start of the next, when one takes less): the watched
# pace of polls counts on it.
INTERVAL = SWEEP_INTERVAL


class Sweeper(Loop):
    """Runs the sweep every ``INTERVAL`` seconds until ``stop()``."""

    def __init__(self, svc: Services):
        super().__init__("fluxhook-sweep")
        self.svc = svc

    def step(self) -> float:
        started = time.monotonic()
        sweep(self.svc)
        return max(0.0, INTERVAL - (time.monotonic() - started))


def start(svc: Services) -> Sweeper:
    """Start the worker's sweep thread."""
    sweeper = Sweeper(svc)
    sweeper.start()
    return sweeper
