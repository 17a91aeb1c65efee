"""Enqueueing worker tasks by dotted path, so the web process never imports worker code."""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry

from .backoff import backoff_schedule

QUEUE_NAME = "fluxhook"
DOWNLOAD_TASK = "worker.download.download_result"
CONFIRM_TASK = "worker.confirm.confirm_outcome"
SUBMIT_TASK = "worker.submit.submit_queued"
CHECK_TASK = "worker.sweep.check_job"

# Eight retries spread over at most ~6 minutes: well inside a result URL's 10-minute life.
DOWNLOAD_RETRIES = 8
CONFIRM_RETRIES = 5
_KEEP = {"result_ttl": 3600, "failure_ttl": 7 * 86400}


def task_queue(connection: Redis) -> Queue:
    """fluxhook's RQ queue on ``connection``."""
    return Queue(QUEUE_NAME, connection=connection)


def _retry(retries: int, cap: float) -> Retry:
    """RQ retries at jittered, growing intervals (RQ's own intervals have no jitter)."""
    return Retry(max=retries, interval=[round(d, 1) for d in backoff_schedule(retries, base=2, cap=cap)])


def _download_lock(job_id: str) -> str:
    return f"fh:download:{job_id}"


def enqueue_download(queue: Queue, job_id: str) -> bool:
    """Queue the download-and-store of a job's result image, unless one is already queued or running."""
    lock = _download_lock(job_id)
    # Outlives the download's retries (~6 min): a duplicate callback meanwhile queues nothing.
    if not queue.connection.set(lock, 1, nx=True, ex=900):
        return False
    try:
        queue.enqueue(DOWNLOAD_TASK, job_id, retry=_retry(DOWNLOAD_RETRIES, 120), job_timeout=180,
                      description=f"download {job_id}", **_KEEP)
    except BaseException:
        queue.connection.delete(lock)
        raise
    return True


def release_download(queue: Queue, job_id: str) -> None:
    """Let the next Ready report for this job queue a download again."""
    queue.connection.delete(_download_lock(job_id))


def enqueue_submits(queue: Queue, job_ids: list[str]) -> None:
    """Queue the submission of jobs just handed a BFL slot (no RQ retries: a failed one goes back in line)."""
    queue.enqueue_many([
        Queue.prepare_data(SUBMIT_TASK, (job_id,), timeout=180, description=f"submit {job_id}", **_KEEP)
        for job_id in job_ids
    ])


def enqueue_checks(queue: Queue, job_ids: list[str], claim: float) -> None:
    """Queue one fallback check per due job the sweep claimed (no RQ retries: the due index retries)."""
    queue.enqueue_many([
        Queue.prepare_data(CHECK_TASK, (job_id, claim), timeout=120, description=f"check {job_id}", **_KEEP)
        for job_id in job_ids
    ])


def _confirm_lock(job_id: str) -> str:
    return f"fh:confirm:{job_id}"


def enqueue_confirm(queue: Queue, job_id: str) -> bool:
    """Queue one poll of BFL to confirm a reported failure; at most one waiting per job."""
    if not queue.connection.set(_confirm_lock(job_id), 1, nx=True, ex=60):
        return False
    try:
        queue.enqueue(CONFIRM_TASK, job_id, retry=_retry(CONFIRM_RETRIES, 60), job_timeout=120,
                      description=f"confirm {job_id}", **_KEEP)
    except BaseException:
        release_confirm(queue, job_id)  # else BFL's retry of this callback would be answered 200 for nothing
        raise
    return True


def release_confirm(queue: Queue, job_id: str) -> None:
    """Let the next failure report for this job queue a check again."""
    queue.connection.delete(_confirm_lock(job_id))
