"""The ingest benchmark's baseline: a bare Flask endpoint that only reads the body and answers 200.

Served by the same gunicorn command and settings module as the real web process, only with
another app:

    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_app()'

It answers the callback paths the real app serves (``POST /webhooks/bfl/<token>``), so the
load generator sends byte-for-byte the same requests to both; ``GET /healthz`` lets the bench
wait for it to be up.
"""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/bfl/<token>")
    def callback(token: str):
        request.get_data()  # read the whole body, as the real receiver must
        return {"ok": True}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
