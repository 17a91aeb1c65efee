"""Enqueueing worker tasks by dotted path, so the web process never imports worker code."""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry

from .backoff import backoff_schedule

QUEUE_NAME = "fluxhook"
DOWNLOAD_TASK = "worker.download.download_result"
CONFIRM_TASK = "worker.confirm.confirm_outcome"

# Eight retries spread over at most ~6 minutes: well inside a result URL's 10-minute life.
DOWNLOAD_RETRIES = 8
CONFIRM_RETRIES = 5


def task_queue(connection: Redis) -> Queue:
    """fluxhook's RQ queue on ``connection``."""
    return Queue(QUEUE_NAME, connection=connection)


def enqueue_download(queue: Queue, job_id: str) -> None:
    """Queue the download-and-store of a job's result image."""
    queue.enqueue(
        DOWNLOAD_TASK, job_id,
        retry=Retry(max=DOWNLOAD_RETRIES, interval=[round(d, 1) for d in backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=120)]),
        job_timeout=180, result_ttl=3600, failure_ttl=7 * 86400, description=f"download {job_id}",
    )


def _confirm_lock(job_id: str) -> str:
    return f"fh:confirm:{job_id}"


def enqueue_confirm(queue: Queue, job_id: str) -> bool:
    """Queue one poll of BFL to confirm a reported failure; at most one waiting per job."""
    if not queue.connection.set(_confirm_lock(job_id), 1, nx=True, ex=60):
        return False
    queue.enqueue(
        CONFIRM_TASK, job_id,
        retry=Retry(max=CONFIRM_RETRIES, interval=[round(d, 1) for d in backoff_schedule(CONFIRM_RETRIES, base=2, cap=60)]),
        job_timeout=120, result_ttl=3600, failure_ttl=7 * 86400, description=f"confirm {job_id}",
    )
    return True


def release_confirm(queue: Queue, job_id: str) -> None:
    """Let the next failure report for this job queue a check again."""
    queue.connection.delete(_confirm_lock(job_id))
