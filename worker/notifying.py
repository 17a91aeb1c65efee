"""The worker's notifier: notification attempts in capacity of their own (docs/operating.md, bulkheads).

One thread takes the attempts whose turn it is while some of its ``size`` attempt threads are free
(``notifications.due_attempts``: a key's single jobs' before its batch items', then earliest due first, at most 2 in
flight to one receiver and 4 for one owner over every worker process, each held for a lease), and hands each to one
of them (``delivering.deliver``: one exchange under a 15 s deadline). Nothing else of the worker runs in these threads
and they run nothing else, so a receiver that trickles or never answers holds two of them for 15 s at a time, never a
download, a poll, a send or another key's notification. While attempts are under way it looks again every
``LOOK_INTERVAL``; an attempt that ends and brings back a message parked behind its receiver or key wakes it at once
(``lua/notify_finish.lua``). At rest it waits until the earliest message or
outbox event is due (``Deliveries.next_due``), or until something new is: a job's end, a replay push a wake-up
(``Keys.notify_added``), so a job's notification starts within milliseconds of its end, whichever process ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from redis.exceptions import RedisError

from fluxhook.core.holds import NOTIFY_STOP_TIMEOUT
from fluxhook.lifecycle.delivering import deliver
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, WORK, Wakes, Watched

from .loops import Loop

log = logging.getLogger("fluxhook.worker")

# How long the notifier waits before it looks again when nothing was due while attempts are under way (their ends
# free room, and put back what waited for it).
LOOK_INTERVAL = 0.5


class Notifier(Loop):
    """The notifier thread and its ``size`` attempt threads, until ``stop()``."""

    def __init__(self, svc: Services, size: int, wakes: Wakes):
        super().__init__("fluxhook-notify")
        self.svc = svc
        self.size = size
        self.wakes = wakes
        self._attempts = ThreadPoolExecutor(size, thread_name_prefix="fluxhook-notify-attempt")
        self._room = threading.Condition()
        self._busy = 0

    def step(self) -> float:
        with self._room:
            self._room.wait_for(lambda: self._busy < self.size or self.stopping, LOOK_INTERVAL)
            free = self.size - self._busy
        if free <= 0 or self.stopping:
            return 0.0
        members = due_attempts(self.svc, free)
        for member in members:
            with self._room:
                self._busy += 1
            self._attempts.submit(self._attempt, member)
        if len(members) == free:
            return 0.0
        if free < self.size or members:
            # Attempts under way: looked at again within LOOK_INTERVAL, or at once when a job's end puts a message in
            # the outbox, so another key's message is not held back by one receiver's slow attempts.
            self._wait(LOOK_INTERVAL)
            return 0.0
        self._rest()
        return 0.0

    def _rest(self) -> None:
        """No attempt under way and none due now: wait until the earliest is due, or a wake-up says one is sooner."""
        deliveries = self.svc.store.deliveries
        due = deliveries.next_due()
        # The guard (worker/guarding.py) looks meanwhile for a message due sooner whose wake-up was lost.
        self._wait(LONGEST_WAIT if due is None else due - time.time(), deliveries.watched(due))

    def _wait(self, seconds: float, watched: Watched | None = None) -> None:
        """Wait ``seconds``, or until a wake-up says a message was added, or the process stops; ``watched``: at rest."""
        if seconds <= 0 or self.stopping:
            return
        with self.waiting():
            woken = self.wakes.wait(self.wakes.keys.notify_added, seconds, watched)
        if woken == WORK and self.stopping:
            self.wakes.give_back(self.wakes.keys.notify_added)  # another process's notifier takes it

    def _attempt(self, member: str) -> None:
        try:
            deliver(self.svc, member)
        except RedisError as exc:
            # Its room and its message come back when its lease lapses: it is attempted again then.
            log.warning("notification attempt lost Redis", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("notification attempt failed")
        finally:
            with self._room:
                self._busy -= 1
                self._room.notify_all()

    def stop(self, timeout: float = NOTIFY_STOP_TIMEOUT) -> None:
        """Take no more attempts; let those under way end (each within its deadline)."""
        super().stop(LOOK_INTERVAL + 5.0)
        self._attempts.shutdown(wait=False)
        with self._room:
            self._room.wait_for(lambda: self._busy == 0, timeout)


def start(svc: Services, wakes: Wakes) -> Notifier:
    """Start the worker's notifier, with ``WORKER_NOTIFY_CONCURRENCY`` attempt threads; ``wakes`` its waits at rest."""
    notifier = Notifier(svc, svc.config.worker_notify_concurrency, wakes)
    notifier.start()
    return notifier
