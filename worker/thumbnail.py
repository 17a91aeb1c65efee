"""The thumbnail task: a small preview of a stored job's image, for the dashboard."""

from __future__ import annotations

from fluxhook.lifecycle.thumbnailing import make_for_job

from .runtime import services


def make_thumbnail(job_id: str) -> str | None:
    """Make a stored job's thumbnail; best effort (never raises for a bad image)."""
    return make_for_job(services(), job_id)
