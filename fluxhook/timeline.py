"""A job's timeline: what happened to it (callbacks, polls, submissions, downloads), for the dashboard.

Each event is a small JSON object on a capped Redis list ``fh:events:{job_id}``, newest first,
written with one pipelined LPUSH + LTRIM + EXPIRE. Recording never raises: the timeline must not
fail the work it describes. The list expires with the job record (retention + two days).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.events")

PREFIX = "fh:events:"
# Enough for the longest fallback story (an hour of polls with growing intervals) plus its callbacks.
MAX_EVENTS = 100


def key(job_id: str) -> str:
    return f"{PREFIX}{job_id}"


def record(svc: "Services", job_id: str, kind: str, pipeline: Pipeline | None = None, **detail: Any) -> None:
    """Append event ``kind`` (``callback``, ``poll``, ``download``...) with ``detail`` to the job's timeline.

    On ``pipeline``, the caller executes it (and sees its errors).
    """
    try:
        event = json.dumps({"at": round(time.time(), 3), "kind": kind, **detail}, separators=(",", ":"), default=str)
        pipe = pipeline if pipeline is not None else svc.redis.pipeline(transaction=False)
        pipe.lpush(key(job_id), event)
        pipe.ltrim(key(job_id), 0, MAX_EVENTS - 1)
        pipe.expire(key(job_id), (svc.config.job_retention_days + 2) * 86400)
        if pipeline is None:
            pipe.execute()
    except (RedisError, TypeError, ValueError) as exc:
        log.warning("event not recorded", extra={"job_id": job_id, "kind": kind, "error": type(exc).__name__})


def recent(connection: Redis, job_id: str, limit: int = MAX_EVENTS) -> list[dict]:
    """The job's events, oldest first (at most ``limit``, the newest ones)."""
    events = []
    for raw in reversed(connection.lrange(key(job_id), 0, limit - 1)):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("at"), (int, float)):
            events.append(event)
    return events


def forget(connection: Redis, job_id: str) -> None:
    """Drop the job's timeline (with the job); a failure only leaves it to expire."""
    try:
        connection.delete(key(job_id))
    except RedisError as exc:
        log.warning("events not removed", extra={"job_id": job_id, "error": type(exc).__name__})
