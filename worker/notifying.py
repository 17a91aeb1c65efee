"""The worker's notifier: notification attempts in capacity of their own (docs/operating.md, bulkheads).

A kind of the process's dispatcher (worker/dispatcher.py), as sends and checks are: it takes the attempts whose turn it
is (``notifications.due_attempts``, by the rule ``store.deliveries`` states) while some of its ``size`` attempt threads
are free, and hands each to one of them (``delivering.deliver``: one exchange under a 15 s deadline). Nothing else of the
worker runs in these threads and they run nothing else, so a receiver that trickles or never answers holds two of them
for 15 s at a time, never a download, a poll, a send or another key's notification. With nothing more to take it waits
until the earliest message or outbox event is due (``Deliveries.rest``), or until something is sooner: whatever makes a
message due pushes a wake-up (``Keys.notify_added``) in the same step (a job's end, a replay, an attempt's end that sets
a retry or brings back a message parked behind its receiver or key: ``lua/notify_finish.lua``), so a job's notification
starts within milliseconds of its end and a retry at its due time, whichever process ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.exceptions import RedisError

from fluxhook.core.holds import NOTIFY_STOP_TIMEOUT
from fluxhook.lifecycle.delivering import deliver
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.services import Services
from fluxhook.store.deliveries import Attempt
from fluxhook.store.wakes import LONGEST_WAIT

from .dispatcher import Kind, Taken

log = logging.getLogger("fluxhook.worker")


class Notifications(Kind):
    """Notification attempts: ``size`` attempt threads (``WORKER_NOTIFY_CONCURRENCY``); a stop lets the attempts under
    way end (each within its deadline)."""

    def __init__(self, svc: Services, size: int):
        super().__init__("notify", svc.store.keys.notify_added, (None,), size,
                         ThreadPoolExecutor(size, thread_name_prefix="fluxhook-notify-attempt"), NOTIFY_STOP_TIMEOUT)
        self.svc = svc
        # The attempts under way in this process's threads (taken, not yet ended).
        self._under_way: set[Attempt] = set()
        self._lock = threading.Lock()

    def take(self, rooms: dict[Any, int]) -> Taken:
        free = rooms[None]
        attempts = due_attempts(self.svc, free)
        with self._lock:
            self._under_way.update(attempts)
            under_way = list(self._under_way)
        items = [(None, attempt) for attempt in attempts]
        if len(items) == free:
            return Taken(items)
        # Nothing more may go now: wait as the module's docstring says. The guard (worker/guarding.py) looks meanwhile
        # for a message due sooner whose wake-up was lost.
        rest = self.svc.store.deliveries.rest(under_way)
        seconds = LONGEST_WAIT if rest.due is None else rest.due - time.time()
        return Taken(items, max(0.0, seconds), rest.watched)

    def run(self, part: Any, item: Attempt) -> None:
        try:
            deliver(self.svc, item)
        except RedisError as exc:
            # Its room and its message come back when its lease lapses: it is attempted again then, by a process
            # waiting for it (not this one, whose wait left its own attempts out, until its next take).
            log.warning("notification attempt lost Redis", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("notification attempt failed")
        finally:
            with self._lock:
                self._under_way.discard(item)
