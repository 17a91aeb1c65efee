"""The ingest benchmark's baselines: a bare Flask endpoint that only reads the body and answers 200,
and the same endpoint with one Redis write per request (a reference, not a target).

Served by the same gunicorn command and settings module as the real web process, only with
another app:

    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_app()'
    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_app(redis_write=True)'

It answers the callback paths the real app serves (``POST /webhooks/bfl/<token>``), so the
load generator sends byte-for-byte the same requests to both; ``GET /healthz`` lets the bench
wait for it to be up.
"""

from __future__ import annotations

import os

from flask import Flask, request
from redis import Redis

COUNTER = "bench:bare-callbacks"


def create_app(redis_write: bool = False) -> Flask:
    """The baseline app; with ``redis_write``, each callback also INCRs a counter in ``REDIS_URL``'s Redis."""
    app = Flask(__name__)
    redis = Redis.from_url(os.environ["REDIS_URL"]) if redis_write else None

    @app.post("/webhooks/bfl/<token>")
    def callback(token: str):
        request.get_data()  # read the whole body, as the real receiver must
        if redis is not None:
            # The least any receiver that keeps what it acknowledged must do: one round trip to Redis.
            redis.incr(COUNTER)
        return {"ok": True}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
