"""The app's own webhook on the BFL-compatible API, received by apps written for BFL, each as BFL documents it:
one from BFL's integration guide (a Flask handler that verifies ``X-BFL-Signature``, the HMAC-SHA256 of the raw
body, with ``hmac.compare_digest``, then reads ``status``, ``timestamp`` and, for a failure, ``error`` and
``message``) and one from BFL's SDK (which checks ``X-Webhook-Secret``, the secret sent back verbatim, as
``bfl.verify_webhook`` does). Both are real HTTP servers on 127.0.0.1 receiving fluxhook's real call, from the
Procfile's web and worker processes and the simulator, for a stored image, a failed task and a moderated one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from conftest import API_TOKEN, serve_in_thread
from devtools.processes import free_port, wait_until
from helpers import answer, serve, stack_on_db

DB = 13  # the BFL-compatible tests' database (tests/test_bfl_compat.py's stack is gone when this module runs)
SECRET = "the-apps-own-secret-7781"


@dataclass
class App:
    """An app's webhook endpoint: what it received, and what it made of each call."""

    port: int
    calls: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, path: str, raw: bytes, headers, verdict: str, read: dict | None = None) -> None:
        with self.lock:
            self.calls.append({"path": path, "raw": raw, "headers": dict(headers), "verdict": verdict, "read": read})

    def first_call(self, path: str) -> dict:
        def found():
            with self.lock:
                return next((call for call in self.calls if call["path"] == path), None)
        return wait_until(found, timeout=40, interval=0.05, message=f"a call to {path}")


def read_bfl_callback(data: dict) -> dict:
    """What an app takes from BFL's callback, by the fields BFL documents (a missing one raises KeyError)."""
    read = {"id": data["id"], "status": data["status"],
            "at": datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))}
    if data["status"] == "Ready":
        read["sample"] = data["result"]["sample"]
    else:
        read["error"], read["message"] = data["error"], data["message"]
    return read


def guide_app(port: int) -> tuple[App, Flask]:
    """The webhook handler of BFL's integration guide: the signature over the raw bytes, then the JSON."""
    app, flask_app = App(port), Flask("bfl-guide-app")

    def signature_is_valid(payload: bytes, signature: str | None, secret: str) -> bool:
        if not signature or not signature.startswith("sha256="):
            return False
        expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature[len("sha256="):])

    @flask_app.post("/<path:path>")
    def webhook(path):
        if not signature_is_valid(request.data, request.headers.get("X-BFL-Signature"), SECRET):
            app.record(f"/{path}", request.data, request.headers, "refused: signature")
            return jsonify({"error": "Invalid signature"}), 401
        try:
            read = read_bfl_callback(request.json)
        except (KeyError, TypeError, ValueError) as exc:
            app.record(f"/{path}", request.data, request.headers, f"refused: no {exc}")
            return jsonify({"error": "not a BFL callback"}), 400
        app.record(f"/{path}", request.data, request.headers, "accepted", read)
        return jsonify({"status": "received"}), 200

    return app, flask_app


def sdk_app(port: int) -> tuple[App, type[BaseHTTPRequestHandler]]:
    """A handler written to BFL's SDK: the secret back in X-Webhook-Secret, compared in constant time as bytes."""
    app = App(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received = self.headers.get("X-Webhook-Secret")
            if not received or not hmac.compare_digest(SECRET.encode(), received.encode()):
                app.record(self.path, raw, self.headers, "refused: secret")
                return answer(self, 401, b"invalid webhook secret")
            try:
                read = read_bfl_callback(json.loads(raw))
            except (KeyError, TypeError, ValueError) as exc:
                app.record(self.path, raw, self.headers, f"refused: no {exc}")
                return answer(self, 400, b"not a BFL callback")
            app.record(self.path, raw, self.headers, "accepted", read)
            answer(self, 200, b"ok")

        def log_message(self, *args):
            pass

    return app, Handler


@pytest.fixture(scope="module")
def apps():
    guide, flask_app = guide_app(free_port())
    guide_server = make_server("127.0.0.1", guide.port, flask_app, threaded=True)
    serve_in_thread(guide_server)
    sdk, handler = sdk_app(free_port())
    sdk_server = serve(sdk.port, handler)
    yield {"guide": guide, "sdk": sdk}
    for server in (guide_server, sdk_server):
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base(redis_server, simulator, _spies, apps, tmp_path_factory) -> str:
    allowed = ",".join(f"127.0.0.1:{app.port}" for app in apps.values())
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("app-webhook-stack")), DB,
                     NOTIFY_HOST_ALLOWLIST=allowed) as running:
        yield running.base_url


# The simulator's prompt markers, and what BFL's callback then says.
OUTCOMES = {
    "stored": ("a lighthouse at dusk", "Ready", None),
    "failed": ("[error] a broken one", "Error", "bfl_error"),
    "moderated": ("[request-moderated] refused", "Request Moderated", "moderated"),
}


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("written_from", ["guide", "sdk"])
def test_an_app_written_for_bfl_accepts_fluxhooks_call(base, apps, sim, written_from, outcome):
    app, (prompt, status, error) = apps[written_from], OUTCOMES[outcome]
    path = f"/{written_from}/{outcome}"
    submitted = requests.post(f"{base}/v1/flux-2-pro", headers={"x-key": API_TOKEN}, timeout=30,
                              json={"prompt": prompt, "webhook_url": app.url(path), "webhook_secret": SECRET})
    assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["id"]

    call = app.first_call(path)
    assert call["verdict"] == "accepted", call
    read = call["read"]
    assert (read["id"], read["status"]) == (task_id, status)
    assert abs((datetime.now(timezone.utc) - read["at"]).total_seconds()) < 60  # the time of the call
    if error is None:
        assert read["sample"].startswith(f"{base}/v1/jobs/{task_id}/image?token=")  # fluxhook's durable link
        image = requests.get(read["sample"], timeout=10)  # with no header, as an <img> tag would
        assert image.status_code == 200 and image.headers["Content-Type"].startswith("image/")
    else:
        assert read["error"] == error and read["message"]
    # BFL's callback fields, with what get_result answers in them.
    sent = json.loads(call["raw"])
    assert set(sent) == {"id", "status", "result", "progress", "details", "timestamp",
                         *(() if error is None else ("error", "message"))}
    result = requests.get(f"{base}/v1/get_result", params={"id": task_id}, headers={"x-key": API_TOKEN}, timeout=10)
    assert {k: sent[k] for k in ("id", "status", "progress", "details")} == {
        k: result.json()[k] for k in ("id", "status", "progress", "details")}
    if error is not None:
        assert (sent["error"], sent["message"]) == (sent["details"]["code"], sent["details"]["message"])

    # Each app does check: the same call, altered, is refused.
    headers = {k: v for k, v in call["headers"].items() if k.lower() in ("content-type", "x-bfl-signature")}
    if written_from == "sdk":
        headers["X-Webhook-Secret"] = SECRET[:-1] + "x"
    forged = requests.post(app.url(path + "/forged"), data=call["raw"].replace(b'"id"', b'"id" ', 1),
                           headers=headers, timeout=10)
    assert forged.status_code == 401
