"""What a report from BFL does to a job: the same path for callbacks and polls."""

from __future__ import annotations

import time

from redis.client import Pipeline
from rq import Queue

from fluxhook import transitions as st
from fluxhook.recovery.schedule import READY_RECHECK
from fluxhook.bfl.reports import BFLReport
from fluxhook.store.jobs import Change, JobStore
from fluxhook.job import Job
from fluxhook.tasks import download_lock, enqueue_confirm, enqueue_download, queue_locked_download

# What apply_report reports, for logs, metrics and the webhook's answer.
DOWNLOAD_QUEUED = "download_queued"
DUPLICATE = "duplicate"
PENDING = "pending"
CONFIRM_QUEUED = "confirm_queued"
FINISHED = "finished"


def accept_ready(jobs: JobStore, queue: Queue, job_id: str, task_id: str, event: BFLReport, *, source: str,
                 proven: bool, count: str | None = None, also: Pipeline | None = None) -> Change:
    """Move a job submitted as BFL task ``task_id`` to ready and queue its download, in one step.

    The commands queued on ``also`` (a pipeline never executed) run in the same step if the download
    is queued. A false Change (a duplicate, another task, no such job) queues nothing.
    """
    lock = download_lock(job_id)
    download = queue.connection.pipeline(transaction=False)
    queue_locked_download(queue, job_id, lock, pipeline=download)
    then = (download,) if also is None else (download, also)
    return jobs.transition(job_id, st.READY, if_equal=("bfl_id", task_id) if task_id else None, count=count,
                           lock=lock, then=then, **ready_fields(event, source=source, proven=proven))


def ready_fields(event: BFLReport, *, source: str, proven: bool) -> dict:
    """What a job moving to ready records of BFL's Ready report ``event``, and when the sweep next looks at it."""
    now = time.time()
    # Due again only to check that its download was not lost: a ready job is never polled.
    return {"bfl_status": st.BFL_READY, "source": source, "result_url": event.sample_url, "ready_proven": proven,
            "due": now + READY_RECHECK, "finished_at": min(event.finished_at or now, now)}


def apply_report(jobs: JobStore, queue: Queue, job: Job, event: BFLReport, *, source: str, confirmed: bool,
                proven: bool = True) -> str:
    """Apply BFL's report to ``job``; failure reports that are not ``confirmed`` (by a poll) only queue a check.

    ``proven`` says whether a callback proved its secret; an unproven Ready is checked with BFL if its URL fails.
    """
    if job.terminal:
        return DUPLICATE
    if event.status == st.BFL_READY:
        change = accept_ready(jobs, queue, job.id, job.bfl_id or "", event, source=source, proven=proven)
        if change.moved:
            # Not locked: the download still running since BFL took back an earlier Ready finds this URL.
            return DOWNLOAD_QUEUED if change.locked else DUPLICATE
        current = jobs.get(job.id)
        if current is None or current.status != st.READY:
            return DUPLICATE
        if proven and not current.ready_proven:
            # A proven report outranks the unproven one the job acted on; the running download
            # will find the new URL when it rechecks.
            jobs.update(job.id, only_in=(st.READY,), result_url=event.sample_url, ready_proven=True)
        # A job already ready may have lost its download to a crash between recording and queueing:
        # the lock in enqueue_download lets a repeated Ready repair that without a second download.
        return DOWNLOAD_QUEUED if enqueue_download(queue, job.id) else DUPLICATE
    if event.status == st.BFL_PENDING:
        # Only while BFL has not reported otherwise: a late Pending must not overwrite a Ready.
        jobs.update(job.id, only_in=(st.QUEUED, st.SUBMITTED), bfl_status=st.BFL_PENDING)
        return PENDING
    if not confirmed:
        # A callback could be replayed or forged: only BFL's own answer to a poll may end the job.
        enqueue_confirm(queue, job.id)
        return CONFIRM_QUEUED
    new_status, code, message = st.terminal_outcome(event.status)
    if event.message and code == "bfl_error":
        message = f"{message}: {event.message}"
    moved = jobs.transition(
        job.id, new_status, bfl_status=event.status, source=source, error={"code": code, "message": message}
    )
    return FINISHED if moved else DUPLICATE
