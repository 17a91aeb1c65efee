"""The check task the sweep queues for each due job (the sweep itself is a thread of each worker: ``sweeping``)."""

from __future__ import annotations

from fluxhook.lifecycle import checking

from .runtime import services


def check_job(job_id: str, claim: float) -> str:
    """Poll, repair or restart one due job, if this check still holds the sweep's claim on it."""
    return checking.check_job(services(), job_id, claim)
