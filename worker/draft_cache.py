"""The draft cache task: fetch a stored video draft's ``result.draft_cache`` and keep it beside the video."""

from __future__ import annotations

from fluxhook.lifecycle.draft_caches import store_draft_cache as store

from .inprocess import last_attempt, services


def store_draft_cache(job_id: str) -> str:
    """Download and store a job's draft cache; raises (so RQ retries) on transient failures."""
    return store(services(), job_id, last_attempt=last_attempt())
