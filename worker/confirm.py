"""The confirm task: a failure reported by callback is believed only once a poll of BFL agrees."""

from __future__ import annotations

from fluxhook.lifecycle.confirming import confirm_outcome as confirm

from .runtime import services


def confirm_outcome(job_id: str) -> str:
    """Poll BFL once for the job and apply its answer as confirmed."""
    return confirm(services(), job_id)
