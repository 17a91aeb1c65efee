"""The worker's balance thread: a thread of every worker process that asks BFL for each account's credits every
``BFL_CREDITS_REFRESH_SECONDS`` (``credits.balance.refresh``), until the process stops.

Every process looks a few times per interval (``check_every``); the refresh's own lock lets one ask BFL per
interval, whichever processes run. A thread, not a task RQ's cron queues: a look that finds the lock held is two
commands, and as an RQ task it cost Redis about fifty (its queueing, RQ's records of it, a lane's turn), every
few seconds with several accounts.
"""

from __future__ import annotations

import time

from fluxhook.core.outcomes import SKIPPED
from fluxhook.credits.balance import check_every, refresh
from fluxhook.services import Services

from .loops import Loop


class BalanceReader(Loop):
    """Refreshes the accounts' balances, each look ``interval`` seconds after the start of the last."""

    def __init__(self, svc: Services):
        super().__init__("fluxhook-balance")
        self.svc = svc
        self.interval = check_every(svc.config.bfl_credits_refresh_seconds, svc.config.named_accounts != ())

    def step(self) -> float:
        started = time.monotonic()
        refresh(self.svc)
        return max(0.0, self.interval - (time.monotonic() - started))


def start(svc: Services) -> BalanceReader:
    """Start the worker's balance thread."""
    reader = BalanceReader(svc)
    reader.start()
    return reader


def refresh_balance() -> str:
    """An older release's balance task, which its cron queued every few seconds: this release refreshes in a thread of
    each worker (``BalanceReader``), so one queued before a rolling deploy has nothing left to do; it ends at once
    rather than failing, to be kept a day as a failed task."""
    return SKIPPED
