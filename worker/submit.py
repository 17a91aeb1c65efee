"""The submit task: send a job that waited as ``queued`` to BFL."""

from __future__ import annotations

from fluxhook.submission import submit_queued as submit_job

from .runtime import last_attempt, services


def submit_queued(job_id: str) -> str:
    """Submit the queued job; raises (so RQ retries with backoff) while BFL answers 429 or is down."""
    return submit_job(services(), job_id, last_attempt=last_attempt())
