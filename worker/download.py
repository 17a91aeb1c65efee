"""The download token: fetch a ready job's image and store it, the job whose turn it is."""

from __future__ import annotations

from typing import Any

from fluxhook.store.work_lines import DOWNLOAD

from .runtime import run_work


def download_result(job_id: str, token: bool = False) -> Any:
    """Download and store a job's result image; raises (so RQ retries) on transient failures."""
    return run_work(DOWNLOAD, job_id, token)
