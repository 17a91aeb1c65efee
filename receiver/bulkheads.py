"""Bulkheads in the web process: kinds of work, and callers, that cannot take each other's capacity (the work permits
handed between callers in turns, the rooms of requests waiting on something else, each app key's read limit).

A process works on at most ``WEB_THREADS`` requests at once: a work permit each, taken before Flask sees the request and
handed between callers in turns (``FairPermits``: each caller's lane, told by ``Lanes`` from the request's head). A
request that waits on something else (its job's end with ``Prefer: wait``, BFL's answer to a submission) sets its permit
aside meanwhile and waits in a room of its own, of bounded size; a full room means the request is answered another way
at once (the job as it is; the submission handed to a worker), so callbacks, job reads and file reads always find a
permit. An answer written while its reader reads (``answers``) gives its permit back for good. gunicorn's thread pool is
as large as the permits and the rooms together (``receiver/gunicorn_conf.py``).

Whose line a request waits in for a work permit, told from its head alone (no Redis, no body): a lane per app key, one
for the admin tokens, one for BFL's callbacks, one for signed file links, one for the dashboard's sessions, and one for
everything else. A key's lane is known only once its secret was checked (``auth`` remembers it here): a made-up or
unchecked token waits in the ``unknown`` lane, so inventing tokens buys no turns. A signed link of a job whose key this
process has seen (``remember_link``, as the link was first opened) waits in that key's lane for links: one key's flood
of links takes turns with the others' instead of filling the shared ``links`` lane, and its refusals are repeated from
memory, slowly, like a key's own.

The permits follow the rule every line of fluxhook's work is served by (``fluxhook.core.fair_turns``,
docs/fair-share.md, docs/operating.md "No key can hold the web"): a permit that frees goes to the waiting lane whose
turn starts first, each permit a turn costing the lane 1 / its ``weight``, so a caller with a hundred requests waiting
delays another caller's request by at most one turn, whatever arrives first, and a lane back from idle starts level with
the others. Within a lane requests keep the order they came in. A lane holds at most half the permits at once: with its
requests long at work (a search, a batch's results being made), the rest still serve the others at once. A permit is
handed to its waiter, never left free for a newcomer to take: ``threading.Semaphore`` lets a newcomer take a permit
before a thread already woken for it, which leaves some requests waiting far longer than others.

Every request of an app key counts against its read limit, here and nowhere else: cheap or not (a job, an image, a
variant, a video, a stream's start, a delivery list, its own usage), a flood of them costs that key alone. A key past
its ``reads_per_minute`` (else READS_PER_MINUTE) is answered ``429 rate_limited`` with ``Retry-After`` before any view
runs; once refused, its reads are refused from the process's memory, with no Redis step, until its bucket could admit
one (``AppKeys.take_read``), and its GETs from the permits' memory before they take a work permit (``refusals``).

Not counted: submissions and tracks (``requests_per_minute`` counts them, so a key is not charged twice for one
request), admin tokens, requests with no valid key (their 401 comes from the view), and anything outside ``/v1``
(BFL's callbacks above all). A job's file opened by its signed link, with no key presented, counts against its job's
key where the job is known (``media.authorized_job``).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from flask import Flask, current_app, request
from werkzeug.wsgi import ClosingIterator

from fluxhook.core.errors import InvalidRequest
from fluxhook.core.fair_turns import FairTurns
from fluxhook.core.job_filters import parse_limit
from fluxhook.core.recent import Recent
from fluxhook.lifecycle.steps import key_limits
from fluxhook.lifecycle.steps.callers import digest

from .auth import API_PREFIX, authenticate, is_admin_token, token_in
from .context import services
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


# --- Lanes: whose line a request waits in ---

BFL = "bfl"
ADMIN = "admin"
UNKNOWN = "unknown"
LINKS = "links"
DASHBOARD = "dashboard"
OTHER = "other"
# Secrets whose key is remembered (their digests): the least recently used forgotten first.
KNOWN_KEYS = 10_000
_CALLBACKS = "/webhooks/"
# Jobs whose key is remembered for their signed links: the least recently opened forgotten first.
KNOWN_LINKS = 10_000
# The job a file path names: /v1/jobs/{id}/image, /video, /poster, /draft_cache.
_JOB_FILE = re.compile(r"/v1/jobs/(job_[0-9A-Za-z]{1,40})/[a-z_]+")
_SESSION_COOKIE = "fluxhook_session="


class Lanes:
    """The lane of each request, and the app keys whose secrets were checked (by their digests, never the secrets)."""

    def __init__(self, api_tokens: Iterable[str]):
        self.api_tokens = tuple(api_tokens)
        self._known: Recent[str, tuple[str, int]] = Recent(KNOWN_KEYS)
        self._links: Recent[str, str] = Recent(KNOWN_LINKS)
        self._lock = threading.Lock()

    def remember(self, secret: str, key_id: str, weight: int) -> None:
        """``secret`` was checked as ``key_id``'s, which has ``weight``: its requests wait in that key's lane."""
        with self._lock:
            self._known[digest(secret)] = (f"key:{key_id}", weight)

    def remember_link(self, job_id: str, key_id: str | None) -> None:
        """Job ``job_id`` was opened by its signed link and is ``key_id``'s (None: an admin token's): its links wait in
        that key's lane for links (a job's key never changes)."""
        if key_id is None:
            return
        with self._lock:
            self._links[job_id] = f"link:{key_id}"

    def of(self, environ: dict) -> tuple[str, int]:
        """(lane, weight) of the request whose WSGI ``environ`` this is."""
        if environ.get("PATH_INFO", "").startswith(_CALLBACKS):
            return BFL, 1
        token = token_in(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))
        if token is not None:
            if is_admin_token(self.api_tokens, token):
                return ADMIN, 1
            with self._lock:
                return self._known.get(digest(token), (UNKNOWN, 1))
        if "token=" in environ.get("QUERY_STRING", ""):
            job = _JOB_FILE.fullmatch(environ.get("PATH_INFO", ""))
            with self._lock:
                return (self._links.get(job.group(1), LINKS) if job else LINKS), 1
        if _SESSION_COOKIE in environ.get("HTTP_COOKIE", ""):
            return DASHBOARD, 1
        return OTHER, 1


# --- The permits, handed between the lanes in turns ---

@dataclass
class _Waiter:
    arrived: int  # the process's count of requests when it came: ties go to the earliest
    weight: int
    turn: threading.Event = field(default_factory=threading.Event)


class FairPermits:
    """At most ``count`` requests at work at once, handed to the waiting lanes in weighted turns."""

    def __init__(self, count: int):
        self.count = count
        self.per_lane = max(1, count // 2)
        self._lock = threading.Lock()
        self._free = count
        self._held: dict[str, int] = {}
        self._lines: dict[str, deque[_Waiter]] = {}  # the lanes with requests waiting, each in the order they came
        self._turns: FairTurns[str] = FairTurns()
        self._arrivals = itertools.count()

    def acquire(self, lane: str, weight: int = 1) -> None:
        """Wait for a permit, in ``lane``'s line, behind its own earlier requests and the lanes whose turn is first."""
        with self._lock:
            waiter = _Waiter(next(self._arrivals), max(1, weight))
            self._lines.setdefault(lane, deque()).append(waiter)
            self._hand_on()
        waiter.turn.wait()

    def release(self, lane: str) -> None:
        """Give ``lane``'s permit back: to the lane whose turn starts first among those that may take one, or to the
        free ones."""
        with self._lock:
            held = self._held[lane] - 1
            if held:
                self._held[lane] = held
            else:
                del self._held[lane]
            self._free += 1
            self._hand_on()

    def held(self, lane: str) -> int:
        with self._lock:
            return self._held.get(lane, 0)

    def waiting(self, lane: str) -> int:
        with self._lock:
            return len(self._lines.get(lane, ()))

    def _hand_on(self) -> None:
        """Give free permits to waiting lanes in turn; a lane at its ``per_lane`` waits for one of its own."""
        while self._free:
            turn = self._turns.earliest((lane, line[0].arrived) for lane, line in self._lines.items()
                                        if self._held.get(lane, 0) < self.per_lane)
            if turn is None:
                return
            lane = turn[0]
            line = self._lines[lane]
            waiter = line.popleft()
            if not line:
                del self._lines[lane]
            self._turns.serve(lane, 1, waiter.weight)
            self._free -= 1
            self._held[lane] = self._held.get(lane, 0) + 1
            waiter.turn.set()


# --- A request's permit, and the rooms ---

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
    count against the same limit (``read_cost``); elsewhere, that path alone."""
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
        permit = request.environ.get(PERMIT)
        try:
            with permit.set_aside() if permit is not None else nullcontext():
                yield True
        finally:
            self._places.release()

    def take(self) -> bool:
        """A place held until ``give_back`` (an answer's, beyond its view); False when the room is full."""
        return self._places.acquire(blocking=False)

    def give_back(self) -> None:
        self._places.release()


# --- Reads: what each request of an app key counts against its read limit ---

# The views that make jobs or batches: counted by ``requests_per_minute`` instead.
SUBMISSIONS = frozenset({"jobs.create", "jobs.track", "batches.create", "bfl_compat.submit"})
# Reads that cost more than one unit: a page of a list by the jobs or batches it asks for, a batch's whole results.
_PAGES = frozenset({"jobs.index", "batches.index"})
_WHOLE_BATCH = "batches.results"


def read_cost(path: str, endpoint: str | None, args: Mapping[str, str]) -> int:
    """The units a request of an app key counts against its read limit: 0 when it is not a read (outside ``/v1``, or
    a submission), a list page's by the ``limit`` it asks for, the largest read for a batch's results, else one. A
    malformed request counts one: it too made the web work."""
    if not path.startswith(API_PREFIX) or endpoint in SUBMISSIONS:
        return 0
    if endpoint in _PAGES:
        try:
            return key_limits.read_cost(parse_limit(args.get("limit")))
        except InvalidRequest:
            return 1
    if endpoint == _WHOLE_BATCH:
        return key_limits.LARGEST_READ
    return 1


def init_app(app: Flask, work_permits: int, api_tokens: tuple[str, ...]) -> None:
    """Work permits around the whole app, the rooms for submissions waiting on BFL and answers being written
    (batches waiting to be made have ``batch_room``'s), and each request of an app key counted before any view runs."""
    lanes = Lanes(api_tokens)
    app.extensions["fluxhook.lanes"] = lanes
    # Flask's own way to wrap its app in middleware; mypy sees a method assigned.
    app.wsgi_app = PermitMiddleware(app.wsgi_app, FairPermits(work_permits), lanes,  # type: ignore[method-assign]
                                    Refusals())
    app.extensions["fluxhook.answers"] = Room(ANSWER_ROOM)
    app.extensions["fluxhook.bfl_calls"] = Room(BFL_CALL_ROOM)

    @app.before_request
    def count_read():
        cost = read_cost(request.path, request.endpoint, request.args)
        if cost == 0:
            return
        caller = authenticate()
        if caller is None or caller.admin:
            return
        svc = services()
        key_limits.take_read(svc.store.app_keys, svc.config, caller, cost, time.time())


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

