"""A worker process's background threads (the dispatcher, the sweep, the guard, the balance reader): one step after
another until stopped, each step outliving a Redis outage or a failure of its own; and what this process did that its
resting threads follow up (a job sent, a task run, work moved into RQ).

A thread at rest that follows up this process's work (the balance reader) waits for it (``Activity.noted``): each
listener has its own event, so one waking does not consume another's.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Self

from redis.exceptions import RedisError

log = logging.getLogger("fluxhook.worker")

# How long to wait before the next step after Redis failed to answer, or a step failed.
RETRY_INTERVAL = 1.0


class Loop(threading.Thread):
    """Runs ``step`` again and again (or a ``run`` of its own) until ``stop_event`` is set; ``step`` returns how long to
    pause first."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()
        self._waiting = False

    def started(self) -> Self:
        self.start()
        return self

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


class Activity:
    """The process's note that it did work, for each thread that listens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def listener(self) -> threading.Event:
        """An event of the caller's own, set each time the process does work (the caller clears it)."""
        event = threading.Event()
        with self._lock:
            self._listeners.append(event)
        return event

    def noted(self) -> None:
        """The process did work: wake every listener."""
        with self._lock:
            listeners = list(self._listeners)
        for event in listeners:
            event.set()


ACTIVITY = Activity()


class RestingLoop(Loop):
    """A ``Loop`` whose step, at rest, waits for its process's work (``rest``); a stop ends that wait at once."""

    def __init__(self, name: str):
        super().__init__(name)
        self._worked = ACTIVITY.listener()

    def request_stop(self) -> None:
        super().request_stop()
        self._worked.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._worked.set()
        super().stop(timeout)

    def worked(self) -> bool:
        """Whether the process did work since the last call (and forget it)."""
        done = self._worked.is_set()
        self._worked.clear()
        return done

    def rest(self, seconds: float) -> None:
        """Wait ``seconds``, or until the process does work or a stop comes."""
        self._worked.wait(seconds)
