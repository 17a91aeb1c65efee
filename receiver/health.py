"""Liveness, readiness and metrics."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response
from rq import Worker

from fluxhook import status as st
from fluxhook.jobs import PREFIX

from .context import services

bp = Blueprint("health", __name__)

HEARTBEAT_MAX_AGE = 60


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Redis answers, a worker sent a heartbeat in the last minute, and storage is writable."""
    svc = services()
    reasons = []
    try:
        svc.redis.ping()
        workers = Worker.all(queue=svc.queue)
        now = time.time()
        if not any(w.last_heartbeat and now - w.last_heartbeat.timestamp() < HEARTBEAT_MAX_AGE for w in workers):
            reasons.append(f"no worker heartbeat in the last {HEARTBEAT_MAX_AGE} s")
    except redis.RedisError as exc:
        reasons.append(f"redis unreachable: {type(exc).__name__}")
    if not svc.storage.writable():
        reasons.append("storage is not writable")
    if reasons:
        return {"status": "unavailable", "reasons": reasons}, 503
    return {"status": "ok", "reasons": []}


@bp.get("/metrics")
def metrics():
    """Prometheus text: jobs by status and queue depth, read from Redis so every process agrees."""
    svc = services()
    pipe = svc.redis.pipeline(transaction=False)
    for name in st.STATUSES:
        pipe.zcard(f"{PREFIX}status:{name}")
    counts = pipe.execute()
    lines = ["# HELP fluxhook_jobs Jobs by status.", "# TYPE fluxhook_jobs gauge"]
    lines += [f'fluxhook_jobs{{status="{name}"}} {count}' for name, count in zip(st.STATUSES, counts)]
    lines += [
        "# HELP fluxhook_queue_depth Tasks waiting on the RQ queue.", "# TYPE fluxhook_queue_depth gauge",
        f"fluxhook_queue_depth {svc.queue.count}",
        "# HELP fluxhook_failed_tasks Tasks in RQ's failed registry.", "# TYPE fluxhook_failed_tasks gauge",
        f"fluxhook_failed_tasks {svc.queue.failed_job_registry.count}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
