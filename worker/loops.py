"""A worker process's background threads (the dispatcher, the sweep, the guard): one step after another until stopped,
each step outliving a Redis outage or a failure of its own."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from redis.exceptions import RedisError

log = logging.getLogger("fluxhook.worker")

# How long to wait before the next step after Redis failed to answer, or a step failed.
RETRY_INTERVAL = 1.0


class Loop(threading.Thread):
    """Runs ``step`` again and again until ``stop_event`` is set; ``step`` returns how long to pause first."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()
        self._waiting = False

    def request_stop(self) -> None:
        """End the loop after the step under way (not from a signal handler: it takes a lock)."""
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop after the step under way and wait up to ``timeout`` seconds for it; not for a wait for work
        (``waiting``), which holds nothing: the process may end during it."""
        self._stop_event.set()
        deadline = time.monotonic() + timeout
        while self.is_alive() and not self._waiting and time.monotonic() < deadline:
            self.join(0.05)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a step's blocking wait for work (a ``BLPOP`` of seconds at idle): a stop does not wait it out. A
        step that goes on after it looks whether a stop came first (``stopping``)."""
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def step(self) -> float:
        raise NotImplementedError

    def run(self) -> None:
        pause = 0.0
        while not self._stop_event.wait(pause):
            try:
                pause = self.step()
            except Exception as exc:
                # The next step may well succeed: the thread must not die for one failure.
                failed(self.name, exc)
                pause = RETRY_INTERVAL


def failed(thread: str, exc: Exception) -> None:
    """Log a step of ``thread`` that failed (``exc``): to be tried again after ``RETRY_INTERVAL``."""
    if isinstance(exc, RedisError):
        log.warning("worker thread lost Redis; trying again", extra={"worker_thread": thread,
                                                                     "error": type(exc).__name__})
    else:
        log.exception("worker thread's step failed", extra={"worker_thread": thread})
