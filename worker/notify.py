"""The notify task: POST a finished job's JSON to its notify_url, signed the Standard Webhooks way."""

from __future__ import annotations

from fluxhook.lifecycle.notifications import deliver

from .runtime import last_attempt, services


def notify_job(job_id: str) -> str:
    """Send a job's notification once; raises (so RQ retries, for over an hour) while the app is unreachable."""
    return deliver(services(), job_id, last_attempt=last_attempt())
