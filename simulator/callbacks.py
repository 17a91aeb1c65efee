"""Webhook delivery: signing headers, background sends, and BFL-like retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from .state import Simulator
    from .tasks import Task

RETRY_DELAYS = (1.0, 5.0, 30.0)
SEND_TIMEOUT = 10.0


def encode_body(payload: dict[str, Any]) -> bytes:
    """Serialise a webhook payload once, so the HMAC covers the exact bytes sent."""
    return json.dumps(payload, separators=(",", ":")).encode()


def webhook_headers(body: bytes, secret: str | None, mode: str) -> dict[str, str]:
    """Headers for one webhook POST under the given signing mode."""
    headers = {"Content-Type": "application/json"}
    if secret is None:
        return headers
    if mode in ("secret", "both"):
        headers["X-Webhook-Secret"] = secret
    if mode in ("hmac", "both"):
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        headers["X-BFL-Signature"] = f"sha256={digest}"
    return headers


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


class CallbackSender:
    """Sends task webhooks from daemon threads so request handlers never wait on receivers."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def send_once(self, task: Task, body: bytes, *, replay: bool = False) -> int | None:
        """POST the body once; record the attempt and return the status code (None on error)."""
        assert task.webhook_url is not None
        headers = webhook_headers(body, task.webhook_secret, self._sim.current("webhook_mode"))
        status: int | None = None
        error: str | None = None
        try:
            # Redirects are answers too: a receiver that redirects did not accept the callback.
            response = requests.post(
                task.webhook_url, data=body, headers=headers, timeout=SEND_TIMEOUT, allow_redirects=False
            )
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = type(exc).__name__
        self._sim.record_callback(task, status, error, replay=replay)
        return status

    def schedule(self, task: Task, body: bytes, copies: int, delay: float, retry_scale: float) -> None:
        """Deliver in the background: wait `delay`, then send `copies` times, each with retries."""
        thread = threading.Thread(
            target=self._run,
            args=(task, body, copies, delay, retry_scale),
            name=f"callback-{task.id[:8]}",
            daemon=True,
        )
        thread.start()

    def _run(self, task: Task, body: bytes, copies: int, delay: float, retry_scale: float) -> None:
        # task.cancel is set by a reset: waiting on it lets pending retries die promptly.
        if delay and task.cancel.wait(delay):
            return
        for _ in range(copies):
            for wait in (0.0, *RETRY_DELAYS):
                if wait and task.cancel.wait(wait * retry_scale):
                    return
                if task.cancel.is_set():
                    return
                if _ok(self.send_once(task, body)):
                    break
