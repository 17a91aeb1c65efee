"""A BFL stand-in whose submissions hang until released (tests and bench/bulkheads.py), on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up on a hanging submission is the point, not an error to print."""


class HangingBFL:
    """Answers submissions like BFL, at once or, while ``hang`` is set, only once ``release`` is.

    While ``fail_with`` is set, every submission is answered with that HTTP status instead.
    """

    def __init__(self, hang: bool = True):
        self.hang = hang
        self.fail_with: int | None = None
        self.release = threading.Event()
        self.hanging = 0
        self.submissions = 0
        self._lock = threading.Lock()
        bfl = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with bfl._lock:
                    bfl.submissions += 1
                    hang = bfl.hang
                    bfl.hanging += hang
                if hang:
                    bfl.release.wait(120)
                    with bfl._lock:
                        bfl.hanging -= 1
                if bfl.fail_with is not None:
                    return self._answer({"detail": "failing on purpose"}, bfl.fail_with)
                task = str(uuid.uuid4())
                self._answer({"id": task, "polling_url": f"http://{self.headers['Host']}/v1/get_result?id={task}"})

            def do_GET(self):  # noqa: N802
                self._answer({"id": self.path.rsplit("=", 1)[-1], "status": "Pending"})

            def _answer(self, payload: dict, status: int = 200) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        """Release every hanging submission and stop serving."""
        self.release.set()
        self.server.shutdown()
