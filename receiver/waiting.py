"""Requests that wait for their job to end (``Prefer: wait``).

Up to ``WAITING_ROOM`` requests of a process wait in the waiting room (``bulkheads``), each holding a thread but no
work permit, no CPU and no Redis connection of its own; the process's one listener to announced job changes
(``store.job_changes``) wakes them.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from flask import current_app, request

from fluxhook.core.errors import JobNotFound
from fluxhook.core.job import Job
from fluxhook.lifecycle.watching import watch
from fluxhook.store.job_changes import JobChanges, Listener

from .bulkheads import WAITING_ROOM, Room
from .context import services
from .request_input import requested_wait

# How long a first waiter gives the listener to subscribe before it looks at its job anyway.
SUBSCRIBE_GRACE = 2.0


class Waiters:
    """The requests of one process waiting on jobs, woken by the store's announcements."""

    def __init__(self, changes: JobChanges, capacity: int = WAITING_ROOM):
        self.changes = changes
        self._room = Room(capacity)
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._subscribed = threading.Event()
        self._listening = False

    def wait(self, job_id: str, seconds: float, finished: Callable[[], bool]) -> bool:
        """Hold the request until ``finished()`` or ``seconds`` pass; False if there was no room to wait."""
        with self._room.enter() as inside:
            if not inside:
                return False
            event = threading.Event()
            with self._lock:
                self._waiting.setdefault(job_id, set()).add(event)
            try:
                self._wait(event, seconds, finished)
            finally:
                with self._lock:
                    self._waiting[job_id].discard(event)
                    if not self._waiting[job_id]:
                        del self._waiting[job_id]
        return True

    def _wait(self, event: threading.Event, seconds: float, finished: Callable[[], bool]) -> None:
        self._listen()
        deadline = time.monotonic() + seconds
        while not finished():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            event.wait(left)
            event.clear()

    def _listen(self) -> None:
        with self._lock:
            start, self._listening = not self._listening, True
        if start:
            self.changes.add(Listener(self._wake, self._wake_all))
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


def init_app(app, waiters: Waiters) -> None:
    app.extensions["fluxhook.waiters"] = waiters


def waited(job: Job) -> tuple[Job, int | None]:
    """The job once it is terminal, or after the seconds the request's ``Prefer: wait`` asks for
    (``request_input.requested_wait``) as it is then; with those seconds if the wait was applied (None: none asked for,
    or no room)."""
    seconds = requested_wait(request.headers.get("Prefer"))
    if seconds is None or job.terminal:
        return job, seconds
    watch(services(), job.id, seconds)  # watched while it waits: BFL's word reaches it live
    waiters: Waiters = current_app.extensions["fluxhook.waiters"]
    if not waiters.wait(job.id, seconds, lambda: _finished(job.id)):
        return job, None
    now = services().jobs.get(job.id)
    if now is None:
        raise JobNotFound(f"no job {job.id[:40]!r}")
    return now, seconds


def _finished(job_id: str) -> bool:
    job = services().jobs.get(job_id)
    return job is None or job.terminal
