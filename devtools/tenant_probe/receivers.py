"""The apps' notification receivers the probe runs, one path per app key."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from ..processes import free_port

# --------------------------------------------------------------------------- the apps' receivers


@dataclass
class Received:
    """One POST an app's receiver got: its path, webhook-id, whether its app's secret verified it, what it answered."""

    path: str
    webhook_id: str
    verified: bool
    status: int
    at: float  # epoch seconds, when it arrived
    headers: dict
    body: bytes


class Receivers:
    """The apps' notification receivers, one path each on one server on 127.0.0.1 (every path the same host and
    port, so a target disabled by host would show). A path with a secret answers 401 to a POST its app's secret does
    not verify, as an app's receiver does; otherwise the status the row set for it (200 unless told)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got: list[Received] = []
        self.secrets: dict[str, str] = {}
        self.answers: dict[str, int] = {}
        self.port = free_port()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                at = time.time()
                with receivers.lock:
                    secret, status = receivers.secrets.get(self.path), receivers.answers.get(self.path, 200)
                verified = verifies(secret, body, headers) if secret else False
                if secret and not verified:
                    status = 401
                with receivers.lock:
                    receivers.got.append(Received(self.path, headers.get("webhook-id", ""), verified, status, at,
                                                  headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def path(self, name: str, answer: int = 200) -> str:
        """A new receiver path (``/name-…``) answering ``answer``."""
        path = f"/{name}-{uuid.uuid4().hex[:8]}"
        with self.lock:
            self.answers[path] = answer
        return path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def verify_with(self, path: str, secret: str) -> None:
        with self.lock:
            self.secrets[path] = secret

    def of(self, path: str, webhook_id: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path and webhook_id in (None, r.webhook_id)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verifies(secret: str, body: bytes, headers: dict) -> bool:
    """Whether a Standard Webhooks library verifies the POST with ``secret``."""
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False

