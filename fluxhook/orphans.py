"""Verified callbacks that came before their job knew its task, kept an hour until it does.

That is a callback on the static URL for a task not tracked yet, or one that overtook
BFL's answer to our own submission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis import Redis

from .callbacks import parse_callback
from .outcomes import apply_event

if TYPE_CHECKING:
    from .jobs import Job
    from .services import Services

ORPHAN_TTL_SECONDS = 3600


def keep_orphan(connection: Redis, bfl_id: str, body: bytes) -> None:
    """Keep a callback body for ``bfl_id`` for an hour (a newer one replaces an older one)."""
    connection.set(f"fh:orphan:{bfl_id}", body, ex=ORPHAN_TTL_SECONDS)


def take_orphan(connection: Redis, bfl_id: str) -> bytes | None:
    """The kept callback body for ``bfl_id``, removed as it is read; None if there is none."""
    return connection.getdel(f"fh:orphan:{bfl_id}")


def apply_kept_callback(svc: Services, job: Job) -> str | None:
    """Apply the callback kept for ``job``'s task, if any (whoever takes it first applies it)."""
    body = take_orphan(svc.redis, job.bfl_id or "")
    if body is None:
        return None
    svc.jobs.count(job.id, "webhooks")
    return apply_event(svc.jobs, svc.queue, job, parse_callback(body), source="webhook", confirmed=False)
