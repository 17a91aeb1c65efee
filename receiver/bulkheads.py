"""Bulkheads in the web process: kinds of work that cannot take each other's capacity.

A process works on at most ``WEB_THREADS`` requests at once: a work permit each, taken before
Flask sees the request and handed out first come, first served. A request that waits on something
else (its job's end with ``Prefer: wait``, BFL's answer to a submission) sets its permit aside
meanwhile and waits in a room of its own, of bounded size; a full room means the request is
answered another way at once (the job as it is; the submission handed to a worker), so callbacks,
job reads and file reads always find a permit. gunicorn's thread pool is as large as the permits
and the rooms together (``receiver/gunicorn_conf.py``).
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

from flask import Flask, current_app, request
from werkzeug.wsgi import ClosingIterator

# Requests of one process that may wait for their job's end at once (Prefer: wait).
WAITING_ROOM = 100
# Submissions of one process that may wait for BFL's answer at once; the rest go to a worker.
BFL_CALL_ROOM = 8
# Batches of one process that may wait at once for their turn to be made (``lifecycle.batching``); the rest are
# answered 503 at once.
BATCH_MAKING_ROOM = 4


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

    def acquire(self) -> None:
        self.permits.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.permits.release()

    @contextmanager
    def set_aside(self) -> Iterator[None]:
        """While the request waits on something else, its permit serves another request."""
        held = self.held
        self.release()
        try:
            yield
        finally:
            if held:
                self.acquire()


class PermitMiddleware:
    """Takes a work permit before the app runs and gives it back once the answer is sent."""

    def __init__(self, app, permits: WorkPermits):
        self.app = app
        self.permits = permits

    def __call__(self, environ, start_response):
        permit = Permit(self.permits)
        permit.acquire()
        environ[PERMIT] = permit
        try:
            answer = self.app(environ, start_response)
        except BaseException:
            permit.release()
            raise
        return ClosingIterator(answer, [permit.release])


PERMIT = "fluxhook.work_permit"


class Room:
    """At most ``size`` requests at once waiting on one kind of thing; nobody queues to get in."""

    def __init__(self, size: int):
        self._places = threading.BoundedSemaphore(size)

    @contextmanager
    def enter(self) -> Iterator[bool]:
        """Yields whether there was a place; while inside, the request's work permit serves others."""
        if not self._places.acquire(blocking=False):
            yield False
            return
        try:
            with _set_aside():
                yield True
        finally:
            self._places.release()


def _set_aside() -> ContextManager:
    permit = request.environ.get(PERMIT)
    return permit.set_aside() if permit is not None else nullcontext()


def init_app(app: Flask, work_permits: int) -> None:
    """Work permits around the whole app, and the rooms for submissions waiting on BFL and batches waiting to be
    made."""
    # Flask's own way to wrap its app in middleware; mypy sees a method assigned.
    app.wsgi_app = PermitMiddleware(app.wsgi_app, WorkPermits(work_permits))  # type: ignore[method-assign]
    app.extensions["fluxhook.bfl_calls"] = Room(BFL_CALL_ROOM)
    app.extensions["fluxhook.batch_making"] = Room(BATCH_MAKING_ROOM)


def bfl_calls() -> Room:
    """The room for this process's submissions waiting on BFL."""
    return current_app.extensions["fluxhook.bfl_calls"]


def batch_making() -> Room:
    """The room for this process's batches waiting for their turn to be made."""
    return current_app.extensions["fluxhook.batch_making"]
