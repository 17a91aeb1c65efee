"""The ingest benchmark's baselines: a bare Flask endpoint that only reads the body and answers 200,
and, as references (not targets), the same endpoint with one Redis write per request, and with the
steps every verified, durable callback takes (``create_steps_app``).

Served by the same gunicorn command and settings module as the real web process, only with
another app:

    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_app()'
    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_app(redis_write=True)'
    gunicorn --config python:receiver.gunicorn_conf 'bench.bare_app:create_steps_app(enqueue=False)'

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


def create_steps_app(enqueue: bool = True) -> Flask:
    """The bare app plus the steps no receiver can skip, taken with fluxhook's own functions.

    Per callback: the URL token, the secret, the body, and the one atomic transition that records
    Ready and, with ``enqueue``, takes the download's lock and queues its RQ task. Nothing else of
    fluxhook's receiver runs (request hooks, its log line, the job's timeline event, metrics, error
    handling): the gap to fluxhook's rate is what those cost.
    """
    # Imported here: the bare baselines, whose memory the footprint section reports, load none of it.
    from fluxhook.bfl.reports import parse_callback
    from fluxhook.bfl.verification import verify_callback
    from fluxhook.core import job as st
    from fluxhook.core import signing
    from fluxhook.core.config import Config
    from fluxhook.lifecycle.steps.applying import accept_ready, from_callback, ready_fields
    from fluxhook.services import build_services
    from fluxhook.store.jobs import Terms

    app = Flask(__name__)
    svc = build_services(Config.from_env())

    @app.post("/webhooks/bfl/<token>")
    def callback(token: str):
        body = request.get_data()
        job_id = signing.job_id_from_webhook_token(svc.config.secret_keys, token)
        if job_id is None:
            return {"ok": False}, 401
        proven = verify_callback(request.headers, body, signing.job_webhook_secrets(svc.config.secret_keys, job_id),
                                 required=True)
        event = parse_callback(body)
        if enqueue:
            change = accept_ready(svc, job_id, event.bfl_id, event, from_callback(proven))
        else:
            # accept_ready's transition, without the download's lock and task.
            change = svc.jobs.transition(job_id, st.READY,
                                         terms=Terms(if_equal=("bfl_id", event.bfl_id), count="webhooks"),
                                         **ready_fields(event, from_callback(proven)))
        return {"ok": True, "moved": change.moved}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
