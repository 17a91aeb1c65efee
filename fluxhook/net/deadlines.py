"""One deadline for a whole HTTP exchange: connect, send, and the whole answer read.

``requests``' timeouts bound each socket operation, not the exchange: a peer that answers a byte every 4 s never
trips a 15 s read timeout, and holds the thread that waits on it for as long as it likes. So a caller that must be
done by a time wraps its request in ``within(seconds)``: every socket the process's HTTP client uses meanwhile
(``http_client``'s connections call ``watch``) is shut down once the time is past, which ends any read or write on it
at once, and ``within`` then raises ``DeadlinePassed``.

One thread of the process, started with the first deadline, does the shutting down: it sleeps until the earliest
deadline still open.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import requests

_current: ContextVar[Deadline | None] = ContextVar("fluxhook_http_deadline", default=None)


class DeadlinePassed(requests.Timeout):
    """The exchange was not over by its deadline (a ``requests.Timeout``, so callers that retry a timeout do)."""

    def __init__(self, seconds: float):
        super().__init__(f"the exchange took longer than its {seconds:g} s")
        self.seconds = seconds


class Deadline:
    """When one exchange must be over, and the sockets it uses until then."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.passed = False
        self.over = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def move(self, seconds: float) -> None:
        """The exchange must now be over ``seconds`` from now (a download that learned what it is fetching)."""
        self.at = time.monotonic() + seconds
        self.seconds = seconds
        _the_watchdog().add(self)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.passed:
                self._sockets.append(sock)
                return
        _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.over:
                return
            self.passed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def end(self) -> None:
        with self._lock:
            self.over = True
            self._sockets = []


def _shut(sock: socket.socket) -> None:
    # The plain socket's own shutdown, also for a TLS socket: SSLSocket.shutdown drops its TLS state, which a read in
    # another thread is still using; shutting the descriptor makes that read end with an EOF instead.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to end


class _Watchdog(threading.Thread):
    """Ends each open deadline's sockets once its time is past."""

    def __init__(self) -> None:
        super().__init__(name="fluxhook-deadlines", daemon=True)
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()

    def add(self, deadline: Deadline) -> None:
        with self._changed:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._changed.notify()

    def run(self) -> None:
        while True:
            with self._changed:
                while self._heap and self._heap[0][2].over:
                    heapq.heappop(self._heap)
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                    continue
                at, _, due = heapq.heappop(self._heap)
            if due.at <= at:  # else moved later, and in the heap again at its new time
                due.expire()


_watchdog: _Watchdog | None = None
_start_lock = threading.Lock()


def _the_watchdog() -> _Watchdog:
    global _watchdog
    with _start_lock:
        if _watchdog is None or not _watchdog.is_alive():  # a forked child has the object but not the thread
            _watchdog = _Watchdog()
            _watchdog.start()
        return _watchdog


@contextmanager
def within(seconds: float) -> Iterator[Deadline]:
    """Run the block's HTTP exchanges under one deadline ``seconds`` from now; ``DeadlinePassed`` if it passed."""
    deadline = Deadline(seconds)
    _the_watchdog().add(deadline)
    token = _current.set(deadline)
    try:
        yield deadline
    except Exception as exc:
        # Whatever a read cut short became on its way up (a requests error, a caller's own), it is the deadline's; so is
        # a socket's own timeout that fired at the deadline before the watchdog got to mark it (a loaded machine).
        if deadline.passed or time.monotonic() >= deadline.at:
            raise DeadlinePassed(deadline.seconds) from exc
        raise
    finally:
        _current.reset(token)
        deadline.end()
    if deadline.passed:
        # Cut short, an answer can still parse (http.client reads an EOF in its head as the head's end): not trusted.
        raise DeadlinePassed(deadline.seconds)


def watch(sock: socket.socket | None) -> None:
    """Bound ``sock`` by the deadline of the exchange under way in this context, if any (``http_client`` calls it
    for each socket it connects or sends a request on)."""
    deadline = _current.get()
    if deadline is not None and sock is not None:
        deadline.watch(sock)
