"""Bulkheads in the web process: kinds of work that cannot take each other's capacity.

A process works on at most ``WEB_THREADS`` requests at once: a work permit each, taken before Flask sees the request
and handed between callers in turns (``fair_permits``: each caller's lane, told by ``lanes`` from the request's head).
A read refused for its key's rate is repeated from memory before any permit is taken (``refusals``). A request that
waits on something else (its job's end with ``Prefer: wait``, BFL's answer to a submission) sets its permit aside
meanwhile and waits in a room of its own, of bounded size; a full room means the request is answered another way at
once (the job as it is; the submission handed to a worker), so callbacks, job reads and file reads always find a
permit. An answer written while its reader reads (``answers``) gives its permit back for good. gunicorn's thread pool
is as large as the permits and the rooms together (``receiver/gunicorn_conf.py``).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

from flask import Flask, current_app, request
from werkzeug.wsgi import ClosingIterator

from .auth import API_PREFIX
from .fair_permits import FairPermits
from .lanes import Lanes
from .refusals import REMEMBER, Refusals

# Requests of one process that may wait for their job's end at once (Prefer: wait).
WAITING_ROOM = 100
# Submissions of one process that may wait for BFL's answer at once; the rest go to a worker.
BFL_CALL_ROOM = 8
# Batches of one process that may wait at once for their turn to be made (``lifecycle.batching``), divided between
# keys by ``batch_room``; the rest are answered 503 at once.
BATCH_MAKING_ROOM = 4
# Answers of one process being written to their readers at once (``answers``), each holding a thread but no permit.
ANSWER_ROOM = 64
# A refusal repeated from memory is answered after this long (at most its Retry-After), by at most TARPIT_ROOM threads
# at once: a client that ignores 429 on a kept-alive connection sends one request a second, not hundreds, and costs
# the process no CPU meanwhile. Past the room, refusals are answered at once.
TARPIT_SECONDS = 1.0
TARPIT_ROOM = 32


class Permit:
    """One request's hold on a work permit, in its lane."""

    def __init__(self, permits: FairPermits, lane: str, weight: int):
        self.permits = permits
        self.lane = lane
        self.weight = weight
        self.held = False

    def acquire(self) -> None:
        self.permits.acquire(self.lane, self.weight)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.permits.release(self.lane)

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
    """Answers a refusal still in force at once; else takes a work permit in the request's lane before the app runs,
    and gives it back once the answer is sent."""

    def __init__(self, app, permits: FairPermits, lanes: Lanes, refusals: Refusals):
        self.app = app
        self.permits = permits
        self.lanes = lanes
        self.refusals = refusals
        self.tarpit = threading.BoundedSemaphore(TARPIT_ROOM)

    def __call__(self, environ, start_response):
        lane, weight = self.lanes.of(environ)
        path = refusal_scope(environ.get("PATH_INFO", ""))
        if environ.get("REQUEST_METHOD") == "GET":
            refused = self.refusals.answer(lane, path)
            if refused is not None:
                self._slowly()
                status, headers, body = refused
                start_response(status, headers)
                return [body]
        permit = Permit(self.permits, lane, weight)
        permit.acquire()
        environ[PERMIT] = permit
        captured: list = []

        def starting(status, headers, exc_info=None):
            captured[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            answer = self.app(environ, starting)
        except BaseException:
            permit.release()
            raise
        until = environ.get(REMEMBER)
        if until is not None and captured and lane.startswith(KEYED_LANES):
            body = b"".join(answer)  # a refusal's few hundred bytes of JSON
            if hasattr(answer, "close"):
                answer.close()
            self.refusals.keep(lane, path, until, captured[0], list(captured[1]), body)
            permit.release()
            return [body]
        return ClosingIterator(answer, [permit.release])

    def _slowly(self) -> None:
        if self.tarpit.acquire(blocking=False):
            try:
                time.sleep(TARPIT_SECONDS)
            finally:
                self.tarpit.release()


PERMIT = "fluxhook.work_permit"
# The lanes of one key (its requests, its jobs' signed links), whose refusals are repeated from memory.
KEYED_LANES = ("key:", "link:")


def refusal_scope(path: str) -> str:
    """What a read refused for its key's rate refuses with it: every GET of that key under ``/v1``, all of which
    count against the same limit (``read_limits``); elsewhere, that path alone."""
    return API_PREFIX if path.startswith(API_PREFIX) else path


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

    def take(self) -> bool:
        """A place held until ``give_back`` (an answer's, beyond its view); False when the room is full."""
        return self._places.acquire(blocking=False)

    def give_back(self) -> None:
        self._places.release()


def _set_aside() -> ContextManager:
    permit = request.environ.get(PERMIT)
    return permit.set_aside() if permit is not None else nullcontext()


def init_app(app: Flask, work_permits: int, api_tokens: tuple[str, ...]) -> None:
    """Work permits around the whole app, and the rooms for submissions waiting on BFL and answers being written
    (batches waiting to be made have ``batch_room``'s)."""
    lanes = Lanes(api_tokens)
    app.extensions["fluxhook.lanes"] = lanes
    # Flask's own way to wrap its app in middleware; mypy sees a method assigned.
    app.wsgi_app = PermitMiddleware(app.wsgi_app, FairPermits(work_permits), lanes,  # type: ignore[method-assign]
                                    Refusals())
    app.extensions["fluxhook.answers"] = Room(ANSWER_ROOM)
    app.extensions["fluxhook.bfl_calls"] = Room(BFL_CALL_ROOM)


def lanes() -> Lanes:
    """This process's lanes: ``auth`` tells them each app key whose secret it checked."""
    return current_app.extensions["fluxhook.lanes"]


def remember_refusal(retry_after: float) -> None:
    """This request's refusal (a read over its key's rate) is answered again, before any permit, for ``retry_after``
    seconds."""
    request.environ[REMEMBER] = time.monotonic() + retry_after


def answers_room() -> Room:
    """The room for this process's answers being written to their readers."""
    return current_app.extensions["fluxhook.answers"]


def drop_permit() -> None:
    """The request gives its work permit back for good: from here its thread only writes its answer."""
    permit = request.environ.get(PERMIT)
    if permit is not None:
        permit.release()


def bfl_calls() -> Room:
    """The room for this process's submissions waiting on BFL."""
    return current_app.extensions["fluxhook.bfl_calls"]

