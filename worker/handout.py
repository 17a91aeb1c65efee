"""The worker's hand-out thread: a BFL slot freed by any process goes to the next job in turn at once,
instead of at the next sweep (which still hands out, within a second, any slot this misses).

A status change that frees a slot pushes a token (``Slots.wait_for_freed``); each token wakes one
worker's thread, which runs the same hand-out as the sweep. Without it a freed slot would idle until
the next sweep, up to a second: long beside tasks that take a few seconds, and added to every
queued job's wait.
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError

from fluxhook.lifecycle.sweep import hand_out
from fluxhook.services import Services

log = logging.getLogger("fluxhook.worker")

# How long one wait for a freed slot lasts before the thread checks whether to stop.
WAIT = 1.0
# How long to wait before trying again after Redis failed to answer, or a hand-out failed.
RETRY_INTERVAL = 1.0


class HandOut(threading.Thread):
    """Waits for freed slots and hands them out, until ``stop()``."""

    def __init__(self, svc: Services):
        super().__init__(name="fluxhook-hand-out", daemon=True)
        self.svc = svc
        self._stop_event = threading.Event()

    def stop(self, timeout: float = WAIT + 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        pause = 0.0
        while not self._stop_event.wait(pause):
            pause = 0.0
            try:
                if self.svc.slots.wait_for_freed(WAIT):
                    hand_out(self.svc)
            except RedisError as exc:
                log.warning("hand-out lost Redis; trying again", extra={"error": type(exc).__name__})
                pause = RETRY_INTERVAL
            except Exception:
                # The sweep hands the slot out within a second: the thread must not die for one failure.
                log.exception("hand-out of a freed slot failed")
                pause = RETRY_INTERVAL


def start(svc: Services) -> HandOut:
    """Start the worker's hand-out thread."""
    thread = HandOut(svc)
    thread.start()
    return thread
