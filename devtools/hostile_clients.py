"""Slow and stalled HTTP clients, for the tests and bench/hostile.py: slowloris and slow bodies on 127.0.0.1.

``Attack`` keeps ``slowloris`` connections sending a request head one byte at a time and
``slow_bodies`` connections sending a body one byte at a time (after a whole head announcing
``Content-Length: 60000``), one byte per connection every ``interval`` seconds. None carries
credentials. A connection the server closes is replaced at once when ``replace`` is set (as a
real attacker would), and how long the server kept each one is recorded.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

SLOWLORIS_HEAD = b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n" + b"X-Padding: " + b"a" * 4000
BODY_LENGTH = 60000
# Shaped like an app key, so the server must wait for the body before it can tell (one with no token is
# refused before its body).
FORGED_KEY = "fhk_0123456789abcdef_" + "A" * 43
# Unauthenticated: the static callback URL, the dashboard's sign-in form, a submission with a forged key.
SLOW_BODY_TARGETS = ("/webhooks/bfl", "/signin", "/v1/jobs")


def slow_body_head(path: str, length: int = BODY_LENGTH, headers: str = "") -> bytes:
    """The head of a POST to ``path`` announcing a body of ``length`` bytes; ``headers``: more header lines."""
    content_type = "application/x-www-form-urlencoded" if path == "/signin" else "application/json"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{headers}"
            f"Content-Length: {length}\r\n\r\n").encode()


def attack_head(path: str) -> bytes:
    """A slow body's head for one of SLOW_BODY_TARGETS (the submission's with the forged key)."""
    return slow_body_head(path, headers=f"Authorization: Bearer {FORGED_KEY}\r\n" if path.startswith("/v1/") else "")


@dataclass
class Hostile:
    """One attacking connection: what it still has to send, and when it opened and closed."""

    sock: socket.socket
    kind: str
    pending: bytes
    opened: float = field(default_factory=time.monotonic)
    closed: float | None = None
    answer: bytes = b""

    @property
    def kept(self) -> float:
        return (self.closed or time.monotonic()) - self.opened


class Attack:
    """Keeps hostile connections open against ``host:port`` until ``stop()`` (or ``limit`` seconds)."""

    def __init__(self, port: int, *, slowloris: int = 0, slow_bodies: int = 0, interval: float = 1.0,
                 replace: bool = True, limit: float = 120.0, host: str = "127.0.0.1"):
        self.address = (host, port)
        self.slowloris, self.slow_bodies = slowloris, slow_bodies
        self.interval, self.replace, self.limit = interval, replace, limit
        self.open: list[Hostile] = []
        self.closed: list[Hostile] = []
        self.opened_count = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- life cycle

    def start(self) -> "Attack":
        for _ in range(self.slowloris):
            self._connect("slowloris", SLOWLORIS_HEAD)
        for n in range(self.slow_bodies):
            self._connect("slow_body", attack_head(SLOW_BODY_TARGETS[n % len(SLOW_BODY_TARGETS)]))
        self._thread = threading.Thread(target=self._run, name="attack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with self._lock:
            for hostile in self.open:
                hostile.sock.close()
            self.open = []
        self._selector.close()

    def __enter__(self) -> "Attack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- figures

    def longest_kept(self) -> tuple[float, bool]:
        """The longest any connection was kept, and whether that one was still open (held to the end)."""
        with self._lock:
            everyone = self.closed + self.open
            if not everyone:
                return 0.0, False
            longest = max(everyone, key=lambda h: h.kept)
            return longest.kept, longest.closed is None

    def closed_by_server(self) -> list[Hostile]:
        with self._lock:
            return list(self.closed)

    # -- the work

    def _connect(self, kind: str, head: bytes) -> None:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        whole = head if kind == "slowloris" else head + b"x" * BODY_LENGTH
        # The head goes at once for a slow body (all but its body); a slowloris starts with its first line.
        first = len(head) if kind == "slow_body" else head.index(b"\n") + 1
        sock.send(whole[:first])
        hostile = Hostile(sock, kind, whole[first:])
        with self._lock:
            self.open.append(hostile)
            self.opened_count += 1
        self._selector.register(sock, selectors.EVENT_READ, hostile)

    def _run(self) -> None:
        started = time.monotonic()
        next_drip = started + self.interval
        while not self._stop.is_set() and time.monotonic() - started < self.limit:
            for key, _ in self._selector.select(timeout=min(0.05, max(0.0, next_drip - time.monotonic()))):
                self._readable(key.data)
            if time.monotonic() >= next_drip:
                next_drip += self.interval
                with self._lock:
                    dripping = list(self.open)
                for hostile in dripping:
                    if hostile.pending:
                        try:
                            hostile.sock.send(hostile.pending[:1])
                            hostile.pending = hostile.pending[1:]
                        except OSError:
                            self._closed(hostile)

    def _readable(self, hostile: Hostile) -> None:
        try:
            data = hostile.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            hostile.answer += data
            return
        self._closed(hostile)

    def _closed(self, hostile: Hostile) -> None:
        if hostile.closed is not None:
            return
        hostile.closed = time.monotonic()
        try:
            self._selector.unregister(hostile.sock)
        except (KeyError, ValueError):
            pass
        hostile.sock.close()
        with self._lock:
            self.open.remove(hostile)
            self.closed.append(hostile)
        if self.replace and not self._stop.is_set():
            if hostile.kind == "slowloris":
                self._connect("slowloris", SLOWLORIS_HEAD)
            else:
                target = SLOW_BODY_TARGETS[self.opened_count % len(SLOW_BODY_TARGETS)]
                self._connect("slow_body", attack_head(target))
