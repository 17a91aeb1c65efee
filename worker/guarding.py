"""The worker's wake-up guard: a thread of every worker process that bounds what a lost wake-up costs (how one is lost:
``store.wakes``).

Every ``WAKE_GUARD_SECONDS`` it looks, for every waiter of its process at rest, at once, whether its work is there
(``Wakes.look``: one command while nothing is), and pushes again the wake-up of one whose work is: a lost wake-up costs at
most the guard, and a process at rest one command per guard for all its waiters, where a waiter of its own that woke each
guard to look would cost several.
"""

from __future__ import annotations

import logging

from fluxhook.store.wakes import Wakes

from .loops import Loop

log = logging.getLogger("fluxhook.worker")


class Guard(Loop):
    """Looks every ``every`` seconds (``WAKE_GUARD_SECONDS``) for work a waiter at rest was not woken for, until
    ``stop()``."""

    def __init__(self, wakes: Wakes, every: float):
        super().__init__("fluxhook-wake-guard")
        self.wakes = wakes
        self.every = every

    def step(self) -> float:
        lost = self.wakes.look()
        if lost:
            log.info("work found with no wake-up: woken again", extra={"wakes": lost})
        return self.every
