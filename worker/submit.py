"""The submit token: send a job that waited as ``queued`` to BFL once the sweep gave it a slot, the job
whose turn it is."""

from __future__ import annotations

from typing import Any

from fluxhook.lifecycle.work import run_queued_for, run_token
from fluxhook.store.work_lines import SUBMIT

from .runtime import last_attempt, services, task_id


def submit_queued(job_id: str, token: bool = False) -> Any:
    """Submit a queued job; if BFL is full or down it goes back in line (and the error propagates).

    A token (token=True) sends the job whose turn it is among every key's jobs handed a slot (job_id only
    says which job's slot queued it); a task queued before tokens sends job_id."""
    if token:
        return run_token(services(), SUBMIT, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), SUBMIT, job_id, last_attempt=last_attempt())
