"""The submit token: send a job that waited as ``queued`` to BFL once the sweep gave it a slot, the job
whose turn it is."""

from __future__ import annotations

from typing import Any

from fluxhook.store.work_lines import SUBMIT

from .runtime import run_work


def submit_queued(job_id: str, token: bool = False) -> Any:
    """Submit a queued job; if BFL is full or down it goes back in line (and the error propagates)."""
    return run_work(SUBMIT, job_id, token)
