"""The notify token: POST a finished job's JSON to its notify_url, signed the Standard Webhooks way."""

from __future__ import annotations

from typing import Any

from fluxhook.lifecycle.work import run_queued_for, run_token
from fluxhook.store.work_lines import NOTIFY

from .runtime import last_attempt, services, task_id


def notify_job(job_id: str, token: bool = False) -> Any:
    """Send a job's notification once; raises (so RQ retries, for over an hour) while the app is unreachable.

    A token (token=True) works on the job whose turn it is among every key's (job_id only says
    which job's arrival queued it); a task queued before tokens works on job_id."""
    if token:
        return run_token(services(), NOTIFY, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), NOTIFY, job_id, last_attempt=last_attempt())
