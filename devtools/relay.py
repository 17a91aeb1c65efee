"""A TCP relay on 127.0.0.1 that slows Redis replication and nothing else.

    .venv/bin/python -m devtools.relay --listen 7001 --target 6379 --replication-delay 0.2

Each node of the failover test (devtools.replicated_redis) sits behind one: a replica's link to its
primary goes through the primary's relay, so every byte the primary streams to it arrives
``replication_delay`` seconds late, and a write the primary acknowledged can still be on its way
when the primary dies: the window that ``REDIS_MIN_REPLICAS`` closes. Clients and sentinels talk
through the same relay undelayed.

A connection is taken for replication when its first bytes from the client (what a replica sends on
connecting: ``PING``, ``REPLCONF ...``, ``PSYNC``) name ``REPLCONF``, ``PSYNC`` or ``SYNC``; from then
on its server-to-client bytes are each released ``delay`` seconds after they arrived, in order.
What is still held back when the primary's end closes is dropped: the delay stands for the primary's
output buffer, which dies with it, not for a wire that would still deliver.

With the target down the relay accepts and then closes at once, as a managed Redis's proxy does;
``retarget`` moves it to another port, as a managed Redis's address moves to a new primary.
"""

from __future__ import annotations

import argparse
import collections
import signal
import socket
import threading
import time

from .processes import free_port

CHUNK = 64 * 1024
SNIFF_BYTES = 1024  # a replica's handshake fits in its first few commands
REPLICATION_WORDS = (b"REPLCONF", b"PSYNC", b"$4\r\nSYNC\r\n")
TICK = 0.5  # how often a blocked thread looks whether it should stop
CONNECT_TIMEOUT = 1.0
SEND_TIMEOUT = 10.0  # a peer that takes no bytes for this long is dropped


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self.replication = False
        self.sniffed = b""
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
            except OSError:
                pass
            sock.close()


class Relay:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``; see the module's docstring."""

    def __init__(self, target: int, port: int | None = None, replication_delay: float = 0.0):
        self.target, self.port, self.delay = target, port or free_port(), replication_delay
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Relay":
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._listener.settimeout(TICK)
        self._thread = threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._listener:
            self._listener.close()
        self.close_links()

    def retarget(self, port: int, close_existing: bool = False) -> None:
        """Send new connections to ``port``; with ``close_existing``, cut the open ones too (their
        clients see the connection closed, as when a managed Redis's address moves)."""
        self.target = port
        if close_existing:
            self.close_links()

    def close_links(self) -> None:
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    @property
    def open_links(self) -> int:
        with self._lock:
            return len(self._links)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=CONNECT_TIMEOUT)
        except OSError:
            client.close()  # target down: accepted, then closed
            return
        for sock in (client, upstream):
            sock.settimeout(TICK)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        with self._lock:
            self._links.add(link)
        threading.Thread(target=self._client_to_server, args=(link,), daemon=True).start()
        try:
            self._server_to_client(link)
        finally:
            link.close()
            with self._lock:
                self._links.discard(link)

    def _client_to_server(self, link: _Link) -> None:
        try:
            while (data := _recv(link, link.client)) is not None:
                if len(link.sniffed) < SNIFF_BYTES and not link.replication:
                    link.sniffed += data[:SNIFF_BYTES]
                    link.replication = any(word in link.sniffed.upper() for word in REPLICATION_WORDS)
                _send(link, link.upstream, data)
        except OSError:
            pass
        link.close()

    def _server_to_client(self, link: _Link) -> None:
        held: collections.deque[tuple[float, bytes]] = collections.deque()
        wake = threading.Condition()
        writer = None
        try:
            while (data := _recv(link, link.upstream)) is not None:
                if not (link.replication and self.delay > 0):
                    _send(link, link.client, data)
                    continue
                if writer is None:  # from here on every byte goes through the delay, so order holds
                    writer = threading.Thread(target=_release, args=(link, held, wake, self.delay), daemon=True)
                    writer.start()
                with wake:
                    held.append((time.monotonic() + self.delay, data))
                    wake.notify()
        except OSError:
            pass
        link.close()  # the primary's end closed: what is held back is dropped with it
        if writer:
            with wake:
                wake.notify()
            writer.join(timeout=5)


def _recv(link: _Link, sock: socket.socket) -> bytes | None:
    """The next bytes from ``sock``; None once it or the link is closed."""
    while not link.closed.is_set():
        try:
            data = sock.recv(CHUNK)
        except TimeoutError:
            continue
        return data or None
    return None


def _send(link: _Link, sock: socket.socket, data: bytes) -> None:
    """All of ``data`` to ``sock``; OSError when the link closes or the peer takes nothing for SEND_TIMEOUT."""
    view, deadline = memoryview(data), time.monotonic() + SEND_TIMEOUT
    while view:
        if link.closed.is_set():
            raise OSError("link closed")
        try:
            view = view[sock.send(view):]
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def _release(link: _Link, held: collections.deque, wake: threading.Condition, delay: float) -> None:
    """Write each held chunk to the client once its time has come."""
    try:
        while not link.closed.is_set():
            with wake:
                if not held:
                    wake.wait(TICK)
                    continue
                due, data = held[0]
                if due > time.monotonic():
                    wake.wait(min(due - time.monotonic(), TICK))
                    continue
                held.popleft()
            _send(link, link.client, data)
    except OSError:
        link.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.relay", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--replication-delay", type=float, default=0.0, help="seconds (0.2: 200 ms)")
    args = parser.parse_args()
    relay = Relay(args.target, args.listen, args.replication_delay).start()
    print(f"relay listening on 127.0.0.1:{relay.port} -> 127.0.0.1:{relay.target}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(TICK):
        pass
    relay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
