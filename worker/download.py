"""The download token: fetch a ready job's image and store it, the job whose turn it is."""

from __future__ import annotations

from typing import Any

from fluxhook.lifecycle.work import run_queued_for, run_token
from fluxhook.store.work_lines import DOWNLOAD

from .runtime import last_attempt, services, task_id


def download_result(job_id: str, token: bool = False) -> Any:
    """Download and store a job's result image; raises (so RQ retries) on transient failures.

    A token (token=True) works on the job whose turn it is among every key's (job_id only says
    which job's arrival queued it); a task queued before tokens works on job_id."""
    if token:
        return run_token(services(), DOWNLOAD, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), DOWNLOAD, job_id, last_attempt=last_attempt())
