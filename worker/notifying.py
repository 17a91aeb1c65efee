"""The worker's notifier: notification attempts in capacity of their own (docs/operating.md, bulkheads).

A ``Pool`` as the senders and checkers are: its dispatcher takes the attempts whose turn it is while some of its
``size`` attempt threads are free (``notifications.due_attempts``: turns between keys by weight, then between a key's
end users, a key's single jobs' before its batch items', then the earliest deadline; at most 2 in flight to one
receiver and 4 for one owner over every worker process, each held for a lease), and hands each to one of them
(``delivering.deliver``: one exchange under a 15 s deadline). Nothing else of the worker runs in these threads and they
run nothing else, so a receiver that trickles or never answers holds two of them for 15 s at a time, never a download,
a poll, a send or another key's notification. With nothing more to take, attempts under way or not, it waits until the
earliest message or outbox event is due (``Deliveries.next_due``: an attempt under way is, when its lease lapses), or
until something is sooner: whatever makes a message due pushes a wake-up (``Keys.notify_added``) in the same step, a
job's end, a replay, an attempt's end that sets a retry or brings back a message parked behind its receiver or key
(``lua/notify_finish.lua``), so a job's notification starts within milliseconds of its end and a retry at its due
time, whichever process ends it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from redis.exceptions import RedisError

from fluxhook.core.holds import NOTIFY_STOP_TIMEOUT
from fluxhook.lifecycle.delivering import deliver
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, WORK, Wakes

from .pool import WAKE_TIMEOUT, Pool

log = logging.getLogger("fluxhook.worker")


class Notifier(Pool):
    """The notifier's dispatcher and its ``size`` attempt threads, until ``stop()``."""

    def __init__(self, svc: Services, size: int, wakes: Wakes):
        super().__init__("fluxhook-notify", ThreadPoolExecutor(size, thread_name_prefix="fluxhook-notify-attempt"),
                         size)
        self.svc = svc
        self.wakes = wakes

    def stop(self, timeout: float = NOTIFY_STOP_TIMEOUT) -> None:
        """Take no more attempts; let those under way end (each within its deadline)."""
        super().stop(timeout)

    def step(self) -> float:
        free = self.rooms([None])[None]
        if free == 0:
            return WAKE_TIMEOUT if self._stopping else 0.0
        freed = self.freed
        members = due_attempts(self.svc, free)
        for member in members:
            self.hand(self._attempt, member)
        if len(members) == free:
            return 0.0
        # Nothing more may go now, attempts under way or not: until the earliest message or outbox event is due (an
        # attempt under way's, when its lease lapses: another process's that died), or a wake-up says one is sooner
        # (a hand's end that frees room pushes one: notify_finish.lua); the guard (worker/guarding.py) looks
        # meanwhile for a message due sooner whose wake-up was lost. The pool is never full here, so no hand's end
        # needs to end this wait.
        due = self.svc.store.deliveries.next_due()
        seconds = LONGEST_WAIT if due is None else due - time.time()
        if seconds <= 0 or self._stopping:
            return 0.0
        with self.resting(freed) as rest:
            woken = (self.wakes.wait(self.wakes.keys.notify_added, seconds, self.svc.store.deliveries.watched(due))
                     if rest else None)
        if woken == WORK and self._stopping:
            self.wakes.give_back(self.wakes.keys.notify_added)  # another process's notifier takes it
        return 0.0

    def _attempt(self, member: str) -> None:
        try:
            deliver(self.svc, member)
        except RedisError as exc:
            # Its room and its message come back when its lease lapses: it is attempted again then.
            log.warning("notification attempt lost Redis", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("notification attempt failed")


def start(svc: Services, wakes: Wakes) -> Notifier:
    """Start the worker's notifier, with ``WORKER_NOTIFY_CONCURRENCY`` attempt threads; ``wakes`` its waits at rest."""
    notifier = Notifier(svc, svc.config.worker_notify_concurrency, wakes)
    notifier.start()
    return notifier
