"""Requests that wait for their job to end (``Prefer: wait``), and the bulkhead that keeps them cheap.

A web process lets at most ``WEB_THREADS`` requests work at once (a work permit each), and up to
``WAITERS_PER_PROCESS`` more wait for a job without a permit: a waiting request holds a thread,
no CPU and no Redis connection of its own. One thread per process listens for jobs turning
terminal (``store.job_changes``) and wakes the requests waiting on them.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from flask import Flask, current_app, g

from fluxhook.store.job_changes import JobChanges
from fluxhook.waiting import WAITERS_PER_PROCESS

# How long a first waiter gives the listener to subscribe before it looks at its job anyway.
SUBSCRIBE_GRACE = 2.0


class Waiters:
    """The requests of one process waiting on jobs, woken by the store's announcements."""

    def __init__(self, changes: JobChanges, work_permits: int, capacity: int = WAITERS_PER_PROCESS):
        self.changes = changes
        self.work = threading.BoundedSemaphore(work_permits)
        self._room = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def wait(self, job_id: str, seconds: float, finished: Callable[[], bool]) -> bool:
        """Hold the request until ``finished()`` or ``seconds`` pass; False if there was no room to wait."""
        if not self._room.acquire(blocking=False):
            return False
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, set()).add(event)
        holds_permit = g.pop("work_permit", False)
        if holds_permit:
            self.work.release()
        try:
            self._listen()
            deadline = time.monotonic() + seconds
            while not finished():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                event.wait(left)
                event.clear()
        finally:
            with self._lock:
                self._waiting[job_id].discard(event)
                if not self._waiting[job_id]:
                    del self._waiting[job_id]
            self._room.release()
            if holds_permit:
                self.work.acquire()
                g.work_permit = True
        return True

    def _listen(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self.changes.listen, name="job-changes", daemon=True,
                                                  args=(self._wake, self._wake_all, self._stop))
                self._listener.start()
        self._subscribed.wait(SUBSCRIBE_GRACE)

    def _wake(self, job_id: str) -> None:
        with self._lock:
            events = list(self._waiting.get(job_id, ()))
        for event in events:
            event.set()

    def _wake_all(self) -> None:
        """Subscribed (again): what was announced meanwhile was missed, so every waiter looks again."""
        self._subscribed.set()
        with self._lock:
            events = [event for waiting in self._waiting.values() for event in waiting]
        for event in events:
            event.set()

    def close(self) -> None:
        """Stop listening (tests; a process's end stops the daemon thread anyway)."""
        self._stop.set()


def init_app(app: Flask, waiters: Waiters) -> None:
    """Give every request a work permit while it works; waiting requests hand theirs back."""
    app.extensions["fluxhook.waiters"] = waiters

    @app.before_request
    def take_permit():
        waiters.work.acquire()
        g.work_permit = True

    @app.teardown_request
    def return_permit(exc):
        if g.pop("work_permit", False):
            waiters.work.release()


def waiters() -> Waiters:
    """This process's waiters."""
    return current_app.extensions["fluxhook.waiters"]
