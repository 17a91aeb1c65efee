"""The download task: fetch a ready job's image or video and store it."""

from __future__ import annotations

from fluxhook.lifecycle.storing import download_and_store

from .inprocess import last_attempt, services


def download_result(job_id: str) -> str:
    """Download and store a job's result; raises (so RQ retries) on transient failures."""
    return download_and_store(services(), job_id, last_attempt=last_attempt())
