"""The submit task: send a job that waited as ``queued`` to BFL once the sweep gave it a slot."""

from __future__ import annotations

from fluxhook.lifecycle.submitting import submit_queued as submit_job

from .runtime import services


def submit_queued(job_id: str) -> str:
    """Submit the queued job; if BFL is full or down it goes back in line (and the error propagates)."""
    return submit_job(services(), job_id)
