"""The notify token: POST a finished job's JSON to its notify_url, signed the Standard Webhooks way."""

from __future__ import annotations

from typing import Any

from fluxhook.store.work_lines import NOTIFY

from .runtime import run_work


def notify_job(job_id: str, token: bool = False) -> Any:
    """Send a job's notification once; raises (so RQ retries, for over an hour) while the app is unreachable."""
    return run_work(NOTIFY, job_id, token)
