"""An app's receiver of notifications that holds its sender (tests and bench/bulkheads.py), on 127.0.0.1: one that
answers ``HTTP/1.1 200 OK`` and then a byte every ``every`` seconds, for ever (``TRICKLE``), or one that reads the
request and never answers (``SILENT``). It counts the connections it holds at once, the most it held, and every
request it was sent, so a test can say how many attempts a sender had in flight."""

from __future__ import annotations

import select
import socket
import threading
import time

TRICKLE = "trickle"
SILENT = "silent"


def _gone(conn: socket.socket) -> bool:
    """Whether ``conn``'s sender shut it: its end of stream waits to be read (or it was reset)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Loopback:
    """Where a receiver on 127.0.0.1 is, for a notify_url and for NOTIFY_HOST_ALLOWLIST."""

    port: int

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


class SlowReceiver(_Loopback):
    """A receiver on 127.0.0.1 that holds each connection as ``mode`` says until the sender gives up."""

    def __init__(self, mode: str = TRICKLE, every: float = 4.0):
        if mode not in (TRICKLE, SILENT):
            raise ValueError(f"mode must be {TRICKLE!r} or {SILENT!r}, got {mode!r}")
        self.mode = mode
        self.every = every
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self._held: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, name="slow-receiver", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with self._lock:
            # Held at once: those whose sender has not gone away. A connection its sender shut before opening this one
            # is not, though its thread may not have run since to see it (a loaded machine's scheduling, not the
            # sender's).
            live = sum(1 for held in self._held if not _gone(held))
            self._held.add(conn)
            self.open += 1
            self.most_open = max(self.most_open, live + 1)
        try:
            if conn.recv(65536):
                with self._lock:
                    self.requests += 1
            if self.mode == TRICKLE:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                # A byte each ``every`` seconds, until the sender goes away (seen at once, not at the next byte).
                while not self._stopped.is_set():
                    readable, _, _ = select.select([conn], [], [], self.every)
                    if readable and not conn.recv(65536):
                        break
                    conn.sendall(b"X")
            else:
                conn.settimeout(None)
                while conn.recv(65536) and not self._stopped.is_set():
                    pass  # reads what comes, answers nothing, until the sender goes away
        except OSError:
            pass  # the sender gave up: what the receiver is for
        finally:
            with self._lock:
                self._held.discard(conn)
                self.open -= 1
            conn.close()

    def wait_closed(self, timeout: float) -> bool:
        """Whether every connection it held is closed within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.open == 0:
                    return True
            time.sleep(0.05)  # the connections end in their own threads: nothing to wait on but the clock
        return False


class PromptReceiver(_Loopback):
    """A receiver on 127.0.0.1 that answers ``200`` at once and notes when each message (``webhook-id``) came."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrived.setdefault(self.headers.get("webhook-id", ""), time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="prompt-receiver", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
