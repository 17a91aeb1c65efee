"""The fallback sweep task (run every second by RQ's cron scheduler) and the per-job check it queues."""

from __future__ import annotations

from fluxhook.lifecycle import checking
from fluxhook.lifecycle.sweep import sweep as run_sweep

from .runtime import services


def sweep() -> dict:
    """Claim due jobs, queue their checks, and queue notifications of jobs that ended."""
    report = run_sweep(services())
    return {"due": report.due, "notifications": report.notifications, "deadlines": report.deadlines}


def check_job(job_id: str, claim: float) -> str:
    """Poll, repair or restart one due job, if this check still holds the sweep's claim on it."""
    return checking.check_job(services(), job_id, claim)
