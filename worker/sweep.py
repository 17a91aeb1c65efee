"""The check task the sweep queues for each due job (the sweep itself is a thread of each worker: ``sweeping``)."""

from __future__ import annotations

from fluxhook.core.outcomes import SKIPPED
from fluxhook.lifecycle import checking

from .runtime import services


def check_job(job_id: str, claim: float) -> str:
    """Poll, repair or restart one due job, if this check still holds the sweep's claim on it."""
    return checking.check_job(services(), job_id, claim)


def sweep() -> str:
    """An older release's sweep task, which its cron queued every second: this release sweeps in a thread of each
    worker (``sweeping``), so one queued before a rolling deploy, or by an older worker still running, has nothing
    left to do; it ends at once rather than failing, to be kept a week as a failed task."""
    return SKIPPED
