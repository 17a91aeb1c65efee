"""The draft cache token: fetch a stored video draft's ``result.draft_cache`` and keep it beside the video."""

from __future__ import annotations

from typing import Any

from fluxhook.store.work_lines import DRAFT_CACHE

from .runtime import run_work


def store_draft_cache(job_id: str, token: bool = False) -> Any:
    """Download and store a job's draft cache; raises (so RQ retries) on transient failures."""
    return run_work(DRAFT_CACHE, job_id, token)
