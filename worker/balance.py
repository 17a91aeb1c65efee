"""The worker's balance thread: a thread of every worker process that keeps each account's balance BFL's own
(``credits.balance``), until the process stops.

It looks every ``LOOK_EVERY`` s (``balance.look``): an account whose jobs ended since its balance was read, or that has
no reading, is read again at once or a few seconds later; and a few times per ``BFL_CREDITS_REFRESH_SECONDS``
(``check_every``) each account is refreshed, the refresh's own lock letting one process ask BFL per interval,
whichever run. A thread, not a task RQ's cron queues: a look is one command at idle (the accounts' last ends), and as
an RQ task it cost Redis about fifty (its queueing, RQ's records of it, a lane's turn).
"""

from __future__ import annotations

import time

from fluxhook.core.outcomes import SKIPPED
from fluxhook.credits.balance import LOOK_EVERY, MAX_STALE, QUIET, Watch, check_every, look
from fluxhook.services import Services

from .loops import RestingLoop

# How long after this process last did work (a job sent, a task run) it looks every LOOK_EVERY s: an end is read once
# QUIET, or MAX_STALE while ends keep coming.
BUSY_FOR = MAX_STALE + QUIET + LOOK_EVERY
# How often a reader at rest looks: for the ends of jobs another process or the web ended.
REST_LOOK = 30.0


class BalanceReader(RestingLoop):
    """Looks at the accounts' balances every ``LOOK_EVERY`` s while this process works (``REST_LOOK`` at rest), and
    refreshes them every ``interval`` s (each from the start of the last)."""

    def __init__(self, svc: Services):
        super().__init__("fluxhook-balance")
        self.svc = svc
        self.interval = check_every(svc.config.bfl_credits_refresh_seconds, svc.config.named_accounts != ())
        self.watch = Watch()
        self.next_refresh = 0.0
        self._busy_until = 0.0

    def step(self) -> float:
        started = time.monotonic()
        if self.worked():
            self._busy_until = started + BUSY_FOR
        refreshing = started >= self.next_refresh
        look(self.svc, self.watch, interval=refreshing)
        if refreshing:  # a look that failed (Redis) is tried again in full
            self.next_refresh = started + self.interval
        busy = started < self._busy_until or bool(self.watch.stale)
        wake = min(started + (LOOK_EVERY if busy else REST_LOOK), self.next_refresh)
        if not busy:
            self.rest(max(0.0, wake - time.monotonic()))  # this process's work wakes it at once
            return 0.0
        return max(0.0, wake - time.monotonic())


def refresh_balance() -> str:
    """An older release's balance task, queued before a rolling deploy: ``BalanceReader`` does its work, so it ends at
    once rather than failing, to be kept a day as a failed task."""
    return SKIPPED
