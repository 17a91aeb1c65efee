"""Enqueueing worker tasks by dotted path, so the web process never imports worker code."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.bfl_limits import CALL_BOUND
from fluxhook.store.effects import AddWork, QueueTask
from fluxhook.store.jobs import Lock
from fluxhook.store.keys import Keys
from fluxhook.store.queues import task_queue, thumbnail_queue
from fluxhook.store.work_lines import DOWNLOAD, DRAFT_CACHE, NOTIFY, THUMBNAIL

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

DOWNLOAD_TASK = "worker.download.download_result"
THUMBNAIL_TASK = "worker.thumbnail.make_thumbnail"
DRAFT_CACHE_TASK = "worker.draft_cache.store_draft_cache"
CONFIRM_TASK = "worker.confirm.confirm_outcome"
CHECK_TASK = "worker.sweep.check_job"
NOTIFY_TASK = "worker.notify.notify_job"

# A result URL lives 10 minutes (an image) or about 2 hours (a video, a draft cache): retries of a
# download that fails for a while (the store or the delivery host) go on at least as long as a video's
# URL (32 retries, 2 s doubling to a 600 s cap, half jitter: 2 to 4 hours in all); the download itself
# stops retrying once its own URL's life is over (see ``media.lifetimes``), so an image's job is not
# kept waiting for hours.
DOWNLOAD_RETRIES = 32
DOWNLOAD_RETRY_CAP = 600
CONFIRM_RETRIES = 5
# Notifications: 13 retries, the n-th after a uniform draw in [d/2, d] with d = min(1800, 2^n) s:
# about 1-2, 2-4, 4-8, ... s at first (a short outage costs seconds), then 30-minute steps; at least
# 62 minutes in all (every draw at its low end) and at most 124, plus the first attempt.
NOTIFY_RETRIES = 13
NOTIFY_RETRY_CAP = 1800
# One attempt is one POST with NOTIFY_TIMEOUT (see notify): far below this.
NOTIFY_JOB_TIMEOUT = 60
_KEEP = {"result_ttl": 3600, "failure_ttl": 7 * 86400}
# Downloads, draft caches, thumbnails and notifications are tokens (see fluxhook.lifecycle.work): each is
# queued with one job added to its kind's work line, and works on whichever job's turn it is when it
# runs. Its job id argument only says which job's arrival queued it.
_TOKEN = {"token": True}


def thumbnail_task_id(job_id: str) -> str:
    """The RQ id of a job's thumbnail task (one per job)."""
    return f"thumbnail-{job_id}"


def thumbnail_task(connection: Redis, job_id: str) -> AddWork:
    """The thumbnail of a stored job's image, to queue with the job's change to stored."""
    # The task never fails over an image (a preview is best effort), so its one retry is for a task
    # that did not get to end: cut off with its worker (RQ queues an abandoned task again only if
    # it has retries left), handed back on a graceful stop, or stopped by a Redis error.
    return AddWork(THUMBNAIL, job_id, QueueTask.record(lambda pipeline: thumbnail_queue(connection).enqueue_call(
        THUMBNAIL_TASK, (job_id,), _TOKEN, timeout=60, description=f"thumbnail {job_id}", job_id=thumbnail_task_id(job_id),
        result_ttl=600, failure_ttl=86400, retry=Retry(max=1), pipeline=pipeline)))


def _retry(retries: int, cap: float) -> Retry:
    """RQ retries at jittered, growing intervals (RQ's own intervals have no jitter)."""
    return Retry(max=retries, interval=[round(d, 1) for d in backoff_schedule(retries, base=2, cap=cap)])


def notify_retry() -> Retry:
    """The retries of one notification: seconds apart at first, spanning over an hour in all."""
    return _retry(NOTIFY_RETRIES, NOTIFY_RETRY_CAP)


# One attempt may last this long: a video of MAX_VIDEO_BYTES (2 GiB) at fetch's slowest accepted rate
# (1 MiB/s) takes 35 minutes; an image's own deadline is 2 minutes.
DOWNLOAD_TIMEOUT = 3600
# Outlives the download's retries (at most ~4 hours) and its last attempt: a duplicate callback
# meanwhile queues nothing.
DOWNLOAD_LOCK_TTL = 4 * 3600 + 600 + DOWNLOAD_TIMEOUT

# RQ states in which a task will still run (or is running).
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def download_lock(keys: Keys, job_id: str) -> Lock:
    """The lock a job's next download holds: it names the RQ task, so a repair can tell a live
    download from one that was lost."""
    return Lock(keys.download_lock(job_id), f"download-{job_id}-{random.getrandbits(32):08x}", DOWNLOAD_LOCK_TTL)


def draft_cache_task_id(job_id: str) -> str:
    """The RQ id of a job's draft cache task (one per job)."""
    return f"draft-cache-{job_id}"


def draft_cache_task(connection: Redis, job_id: str) -> AddWork:
    """The download of a stored job's draft cache, to queue with the job's change to stored."""
    # A download of its own, not the sample's: retried as long as one, its URL's life (2 hours) the
    # real bound; up to MAX_VIDEO_BYTES, so as long a timeout.
    return AddWork(DRAFT_CACHE, job_id, QueueTask.record(lambda pipeline: task_queue(connection).enqueue_call(
        DRAFT_CACHE_TASK, (job_id,), _TOKEN, retry=_retry(DOWNLOAD_RETRIES, DOWNLOAD_RETRY_CAP), timeout=DOWNLOAD_TIMEOUT,
        description=f"draft cache {job_id}", job_id=draft_cache_task_id(job_id), pipeline=pipeline, **_KEEP)))


def download_task(queue: Queue, job_id: str, lock: Lock) -> AddWork:
    """The download of a job's result, queued by whoever takes ``lock`` (its token's RQ id is the lock's value)."""
    return AddWork(DOWNLOAD, job_id, QueueTask.record(lambda pipeline: queue.enqueue_call(
        DOWNLOAD_TASK, (job_id,), _TOKEN, retry=_retry(DOWNLOAD_RETRIES, DOWNLOAD_RETRY_CAP), timeout=DOWNLOAD_TIMEOUT,
        description=f"download {job_id}",
        job_id=lock.value, pipeline=pipeline, **_KEEP)))


def enqueue_download(svc: "Services", job_id: str) -> bool:
    """Queue the download-and-store of a job's result, unless one is already queued or running."""
    lock = download_lock(svc.store.keys, job_id)
    if not svc.store.locks.take(*lock):
        return False
    try:
        svc.store.effects.apply([download_task(svc.queue, job_id, lock)])
    except BaseException:
        svc.store.locks.release(lock.key)
        raise
    return True


def download_pending(svc: "Services", job: "Job") -> bool:
    """Whether the job's download will still run: it waits in the download line (a token will take it), or
    a token queued, scheduled for a retry, or running is bound to it."""
    waiting, token = svc.store.work.pending(DOWNLOAD, job.key_id, job.id)
    return waiting or (token is not None and task_live(svc, token))


def task_live(svc: "Services", task_id: str) -> bool:
    """Whether RQ task ``task_id`` is queued, scheduled for a retry, or running."""
    try:
        task = RQJob.fetch(task_id, connection=svc.queue.connection)
    except NoSuchJobError:
        return False
    return task.get_status(refresh=False) in _PENDING


def ensure_download(svc: "Services", job: "Job") -> bool:
    """Queue the job's download if none is pending (one lost to a crash); True if it queued one.

    A token more than the jobs waiting is harmless: it finds the line empty, or takes another job's turn."""
    if download_pending(svc, job):
        return False
    release_download(svc, job.id)
    return enqueue_download(svc, job.id)


def release_download(svc: "Services", job_id: str) -> None:
    """Let the next Ready report for this job queue a download again."""
    svc.store.locks.release(svc.store.keys.download_lock(job_id))


def enqueue_checks(queue: Queue, job_ids: list[str], claim: float) -> None:
    """Queue one fallback check per due job the sweep claimed (no RQ retries: the due index retries)."""
    # Within the hold a check puts on its job.
    queue.enqueue_many([
        Queue.prepare_data(CHECK_TASK, (job_id, claim), timeout=CALL_BOUND, description=f"check {job_id}", **_KEEP)
        for job_id in job_ids
    ])


def enqueue_confirm(svc: "Services", job_id: str) -> bool:
    """Queue one poll of BFL to confirm a reported failure; at most one waiting per job."""
    if not svc.store.locks.take(svc.store.keys.confirm_lock(job_id), "1", 60):
        return False
    try:
        svc.queue.enqueue(CONFIRM_TASK, job_id, retry=_retry(CONFIRM_RETRIES, 60), job_timeout=120,
                          description=f"confirm {job_id}", **_KEEP)
    except BaseException:
        release_confirm(svc, job_id)  # else BFL's retry of this callback would be answered 200 for nothing
        raise
    return True


def release_confirm(svc: "Services", job_id: str) -> None:
    """Let the next failure report for this job queue a check again."""
    svc.store.locks.release(svc.store.keys.confirm_lock(job_id))


def notify_task_id(job_id: str) -> str:
    """The RQ id of a job's notification task: one per job, so a second drain cannot queue another."""
    return f"notify-{job_id}"


def enqueue_notifications(svc: "Services", job_ids: list[str], pipeline) -> int:
    """Put each job in the notify line and queue one notify token for it, on ``pipeline`` (a MULTI the caller
    executes); returns how many.

    A job whose token already exists (queued, waiting for a retry, running or done) gets none: a
    drain repeated after a crash between queueing and emptying the outbox sends nothing twice.
    """
    check = svc.queue.connection.pipeline(transaction=False)
    for job_id in job_ids:
        check.exists(RQJob.key_for(notify_task_id(job_id)))
    fresh = [job_id for job_id, exists in zip(job_ids, check.execute(), strict=False) if not exists]
    if fresh:
        for job_id, key_id in zip(fresh, svc.jobs.key_ids(fresh), strict=True):
            svc.store.work.add(NOTIFY, key_id, job_id, pipeline)
        svc.queue.enqueue_many([
            Queue.prepare_data(NOTIFY_TASK, (job_id,), _TOKEN, timeout=NOTIFY_JOB_TIMEOUT, retry=notify_retry(),
                               description=f"notify {job_id}", job_id=notify_task_id(job_id), **_KEEP)
            for job_id in fresh
        ], pipeline=pipeline)
    return len(fresh)
