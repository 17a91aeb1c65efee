"""Requests that wait for their job to end (``Prefer: wait``), and the bulkhead that keeps them cheap.

A web process lets at most ``WEB_THREADS`` requests work at once (a work permit each, taken before
Flask sees the request, handed out first come, first served), and up to ``WAITERS_PER_PROCESS``
more wait for a job without a permit: a waiting request holds a thread, no CPU and no Redis
connection of its own. One thread per process listens for jobs turning terminal
(``store.job_changes``) and wakes the requests waiting on them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator

from flask import Flask, current_app, request
from werkzeug.wsgi import ClosingIterator

from fluxhook.store.job_changes import JobChanges
from fluxhook.waiting import WAITERS_PER_PROCESS

# How long a first waiter gives the listener to subscribe before it looks at its job anyway.
SUBSCRIBE_GRACE = 2.0


class WorkPermits:
    """At most ``count`` requests at work at once, served in the order they came.

    First come, first served on purpose: ``threading.Semaphore`` lets a newcomer take a permit
    before a thread already woken for it, which leaves some requests waiting far longer than others.
    """

    def __init__(self, count: int):
        self._lock = threading.Lock()
        self._free = count
        self._line: deque[threading.Event] = deque()

    def acquire(self) -> None:
        """Wait for a permit, behind everyone already waiting."""
        with self._lock:
            if self._free and not self._line:
                self._free -= 1
                return
            turn = threading.Event()
            self._line.append(turn)
        turn.wait()

    def release(self) -> None:
        """Hand the permit to the next in line, or put it back."""
        with self._lock:
            if self._line:
                self._line.popleft().set()
            else:
                self._free += 1


class Permit:
    """One request's hold on a work permit."""

    def __init__(self, permits: WorkPermits):
        self.permits = permits
        self.held = False

    def take(self) -> None:
        self.permits.acquire()
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.permits.release()

    @contextmanager
    def set_aside(self) -> Iterator[None]:
        """While the request waits on something else, its permit serves another request."""
        held = self.held
        self.give_back()
        try:
            yield
        finally:
            if held:
                self.take()


class PermitMiddleware:
    """Takes a work permit before the app runs and gives it back once the answer is sent."""

    def __init__(self, app, permits: WorkPermits):
        self.app = app
        self.permits = permits

    def __call__(self, environ, start_response):
        permit = Permit(self.permits)
        permit.take()
        environ[PERMIT] = permit
        try:
            answer = self.app(environ, start_response)
        except BaseException:
            permit.give_back()
            raise
        return ClosingIterator(answer, [permit.give_back])


PERMIT = "fluxhook.work_permit"


class Waiters:
    """The requests of one process waiting on jobs, woken by the store's announcements."""

    def __init__(self, changes: JobChanges, capacity: int = WAITERS_PER_PROCESS):
        self.changes = changes
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
        permit = request.environ.get(PERMIT)
        try:
            with permit.set_aside() if permit else nullcontext():
                self._wait(event, seconds, finished)
        finally:
            with self._lock:
                self._waiting[job_id].discard(event)
                if not self._waiting[job_id]:
                    del self._waiting[job_id]
            self._room.release()
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


def init_app(app: Flask, waiters: Waiters, work_permits: int) -> None:
    """Work permits around the whole app, and this process's waiters."""
    app.extensions["fluxhook.waiters"] = waiters
    app.wsgi_app = PermitMiddleware(app.wsgi_app, WorkPermits(work_permits))


def waiters() -> Waiters:
    """This process's waiters."""
    return current_app.extensions["fluxhook.waiters"]
