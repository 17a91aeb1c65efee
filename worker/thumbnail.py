"""The thumbnail token: a small preview of a stored job's image, for the dashboard."""

from __future__ import annotations

from typing import Any

from fluxhook.lifecycle.work import run_queued_for, run_token
from fluxhook.store.work_lines import THUMBNAIL

from .runtime import last_attempt, services, task_id


def make_thumbnail(job_id: str, token: bool = False) -> Any:
    """Make a stored job's thumbnail; best effort (never raises for a bad image).

    A token (token=True) works on the job whose turn it is among every key's (job_id only says
    which job's arrival queued it); a task queued before tokens works on job_id."""
    if token:
        return run_token(services(), THUMBNAIL, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), THUMBNAIL, job_id, last_attempt=last_attempt())
