"""Verified callbacks that came before their job knew its task, kept an hour until it does.

That is a callback on the static URL for a task not tracked yet, or one that overtook
BFL's answer to our own submission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .callbacks import parse_callback
from .outcomes import apply_event

if TYPE_CHECKING:
    from .jobs import Job
    from .services import Services

ORPHAN_TTL_SECONDS = 3600


def _key(bfl_id: str) -> str:
    return f"fh:orphan:{bfl_id}"


def keep_callback(svc: Services, bfl_id: str, body: bytes) -> str | None:
    """Keep a verified callback for a task no job knows yet; apply it at once if a job learned it meanwhile."""
    svc.redis.set(_key(bfl_id), body, ex=ORPHAN_TTL_SECONDS)
    # The job may have learned its task between our look-up and the keep, and found nothing then.
    job = svc.jobs.get_by_bfl_id(bfl_id)
    return apply_kept_callback(svc, job) if job is not None else None


def apply_kept_callback(svc: Services, job: Job) -> str | None:
    """Apply the callback kept for ``job``'s task, if any; whoever takes it first applies it."""
    key = _key(job.bfl_id or "")
    body = svc.redis.getdel(key)
    if body is None:
        return None
    try:
        svc.jobs.count(job.id, "webhooks")
        return apply_event(svc.jobs, svc.queue, job, parse_callback(body), source="webhook", confirmed=False)
    except BaseException:
        svc.redis.set(key, body, ex=ORPHAN_TTL_SECONDS, nx=True)  # put it back for the next attempt
        raise
