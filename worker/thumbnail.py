"""The thumbnail token: a small preview of a stored job's image, for the dashboard."""

from __future__ import annotations

from typing import Any

from fluxhook.store.work_lines import THUMBNAIL

from .runtime import run_work


def make_thumbnail(job_id: str, token: bool = False) -> Any:
    """Make a stored job's thumbnail; best effort (never raises for a bad image)."""
    return run_work(THUMBNAIL, job_id, token)
