"""The draft cache token: fetch a stored video draft's ``result.draft_cache`` and keep it beside the video."""

from __future__ import annotations

from typing import Any

from fluxhook.lifecycle.work import run_queued_for, run_token
from fluxhook.store.work_lines import DRAFT_CACHE

from .runtime import last_attempt, services, task_id


def store_draft_cache(job_id: str, token: bool = False) -> Any:
    """Download and store a job's draft cache; raises (so RQ retries) on transient failures.

    A token (token=True) works on the job whose turn it is among every key's (job_id only says
    which job's arrival queued it); a task queued before tokens works on job_id."""
    if token:
        return run_token(services(), DRAFT_CACHE, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), DRAFT_CACHE, job_id, last_attempt=last_attempt())
