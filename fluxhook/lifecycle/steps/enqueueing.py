"""Enqueueing worker tasks by dotted path, so the web process never imports worker code.

Downloads and draft caches go through their work lines first (``fluxhook.store.work_lines``): a job's change of status
adds it to its line (``AddWork``), and ``feed`` moves the jobs whose turn it is into RQ while few tasks wait there, each
RQ task naming its own job; work whose turn is now (no line holds any) is queued by the change's own caller
(``queue_handed``). The cron thread's tasks go straight to RQ, in no line.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, Callable

from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.holds import DOWNLOAD_LOCK_TTL, DOWNLOAD_TIMEOUT, FAILED_TASK_KEPT
from fluxhook.media.fetch import HOUR_URL_LIFE, IMAGE_URL_LIFE, model_url_life
from fluxhook.store.effects import AddWork, Handed
from fluxhook.store.jobs import Lock
from fluxhook.store.keys import Keys
from fluxhook.store.owners import member_job
from fluxhook.store.work_lines import (
    AHEAD,
    DOWNLOAD,
    DOWNLOAD_HOUR,
    DOWNLOAD_LONG,
    DOWNLOADS,
    DRAFT_CACHE,
    KINDS,
    Taken,
)

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

DOWNLOAD_TASK = "worker.download.download_result"
DRAFT_CACHE_TASK = "worker.draft_cache.store_draft_cache"

# A result URL lives 10 minutes (an image) or about 2 hours (a video, a draft cache): retries of a download that fails
# for a while (the store or the delivery host) go on at least as long as a video's URL (32 retries, 2 s doubling to a
# 600 s cap, half jitter: 2 to 4 hours in all); the download itself stops once its own URL's life is over
# (``media.fetch``), so an image's job is not kept waiting for hours.
DOWNLOAD_RETRIES = 32
DOWNLOAD_RETRY_CAP = 600
# A job's own tasks (its download, its draft cache) keep nothing of a run that succeeded: nobody reads a task's return
# value (the job's record and timeline say what became of it), and RQ's result and task records would be most of what a
# stored job holds in Redis its first hour. Not RQ's 0, which deletes the task by reading its executions back in several
# round trips: with this TTL the worker deletes both in the end's own MULTI (``worker.inprocess``), where left to expire
# they would stay in memory for hours among the millions of keys a retention keeps. A failed run is kept a week, to look
# at: a job's tasks fail in RQ only when they did not get to end (a worker killed, Redis failing) or gave up, so few.
KEEPS_NOTHING = 1  # the result_ttl that marks a task keeping nothing of its success
_KEEP = {"result_ttl": KEEPS_NOTHING, "failure_ttl": FAILED_TASK_KEPT}


# RQ states in which a task will still run (or is running).
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def download_lock(keys: Keys, job_id: str) -> Lock:
    """The lock a job's next download holds, from its Ready to its end: a duplicate callback meanwhile queues nothing.
    Held with the own part of the RQ id its task takes when the step that takes it queues it at once (``task_id``)."""
    return Lock(keys.download_lock(job_id), secrets.token_hex(4), DOWNLOAD_LOCK_TTL)


def download_task_name(job_id: str) -> str:
    """The name of a job's download task, which each of its RQ ids begins with (``task_id``); an older release's
    whole id."""
    return f"download-{job_id}"


def draft_cache_task_name(job_id: str) -> str:
    """The name of a job's draft cache task, which its RQ id begins with (``task_id``)."""
    return f"draft-cache-{job_id}"


def task_id(name: str, own: str | None = None) -> str:
    """An RQ id of its own for one enqueue of the task ``name`` (``download_task_name``, ``draft_cache_task_name``...), or
    the one ``own`` (``own_part``) names. RQ enqueues into the record of any task with the id it is given: one that
    just ended under it still has RQ's end of it to write, which would take the new task's record over (its status,
    or delete it) and lose it."""
    return f"{name}-{own or secrets.token_hex(4)}"


def task_name(rq_id: str) -> str:
    """The task an RQ id is an enqueue of (``task_id``'s ``name``)."""
    return rq_id.rpartition("-")[0]


def own_part(rq_id: str) -> str:
    """What is an enqueue's own in its RQ id (``task_id``): 8 hex digits."""
    return rq_id.rpartition("-")[2]


def draft_cache_task(job_id: str) -> AddWork:
    """The download of a stored job's draft cache, to add with the job's change to stored."""
    return AddWork(DRAFT_CACHE, job_id)


def download_line(model: str | None) -> str:
    """The line a job's download waits in, by how long its result URL lives (the catalog's ``url_life``): the
    lines are taken shortest-lived first, so downloads go in the order their URLs expire."""
    life = model_url_life(model)
    return next((line for longest, line in _LINES_BY_URL_LIFE if life <= longest), DOWNLOAD_LONG)


# Each download line but the last, with the longest URL life it takes: an image's 10 minutes, then an hour.
_LINES_BY_URL_LIFE = ((IMAGE_URL_LIFE, DOWNLOAD), (HOUR_URL_LIFE, DOWNLOAD_HOUR))


def download_task(job_id: str, model: str | None) -> AddWork:
    """The download of a job of ``model``'s result, added by whoever takes its ``download_lock``."""
    return AddWork(download_line(model), job_id)


def enqueue_download(svc: "Services", job_id: str, model: str | None) -> bool:
    """Queue the download-and-store of a job's result, unless one is already queued or running."""
    lock = download_lock(svc.store.keys, job_id)
    if not svc.store.locks.acquire(*lock):
        return False
    try:
        taken = svc.store.effects.apply([download_task(job_id, model)])
    except BaseException:
        svc.store.locks.release(lock.key)
        raise
    queue_handed(svc, taken, lock.value)
    return True


def download_pending(svc: "Services", job: "Job", hold: float | None = None) -> bool:
    """Whether the job's download will still run: it waits in the download line, or, asked by a check holding the job
    until ``hold``, was taken for RQ since the check's claim (``WorkLines.pending``), or its RQ task is queued,
    scheduled for a retry, or running."""
    if svc.store.work.pending(download_line(job.model), job.key_id, job.id, job.deadline, job.end_user, hold=hold):
        return True
    return task_live(svc, queued_download(svc, job.id))


def queued_download(svc: "Services", job_id: str) -> str:
    """The RQ id of the job's download task last queued: its download lock holds the id's own part (``queue_handed``);
    a lock an older release took ("1"), or none, names none, and that release's one id is the task's."""
    return download_named(job_id, svc.store.locks.holder(svc.store.keys.download_lock(job_id)))


def download_named(job_id: str, held: str | None) -> str:
    """The RQ id of the job's download task its download lock names, held with ``held`` (``queued_download``)."""
    return task_id(download_task_name(job_id), held) if held and _OWN_PART.fullmatch(held) else download_task_name(job_id)


_OWN_PART = re.compile(r"[0-9a-f]{8}")


def task_live(svc: "Services", rq_id: str) -> bool:
    """Whether RQ task ``rq_id`` is queued, scheduled for a retry, or running."""
    try:
        task = RQJob.fetch(rq_id, connection=svc.queue.connection)
    except NoSuchJobError:
        return False
    status = task.get_status(refresh=False)
    if status == JobStatus.QUEUED and Queue(task.origin, connection=svc.queue.connection).get_job_position(task.id) is None:
        # Queued but in no queue: a worker took it (RQ pops it when a worker listens on several queues) and was
        # killed before it started it, and RQ will never run it. Unless it has started since.
        return task.get_status(refresh=True) in _PENDING - {JobStatus.QUEUED}
    return status in _PENDING


def ensure_download(svc: "Services", job: "Job", hold: float) -> bool:
    """Queue the job's download if none is pending (one lost to a crash), for a check holding the job until ``hold``;
    True if it queued one. The download lock, released here, cannot tell a move under way (its task is in no queue
    until the move's MULTI): only the move's lease does (``download_pending``)."""
    if download_pending(svc, job, hold):
        return False
    release_download(svc, job.id)
    return enqueue_download(svc, job.id, job.model)


def ensure_draft_cache(svc: "Services", job: "Job", hold: float) -> bool:
    """Put the stored job's draft cache back in its line if it is neither there nor taken for RQ since the claim of
    the check holding the job until ``hold`` (``WorkLines.pending``): its job came due, so the move that took it never
    queued its task (its process died in between; a task queued clears the due time in the same step,
    ``WorkLines.queued``). True if it did. One whose URL outlived its life is given up by its task, as any."""
    if svc.store.work.pending(DRAFT_CACHE, job.key_id, job.id, job.deadline, job.end_user, hold=hold):
        return False
    queue_handed(svc, svc.store.effects.apply([draft_cache_task(job.id)]))
    return True


def release_download(svc: "Services", job_id: str) -> None:
    """Let the next Ready report for this job queue a download again."""
    svc.store.locks.release(svc.store.keys.download_lock(job_id))


# A draft cache is a download of its own, retried as long as one (its URL's life, 2 hours, the real bound), up to
# MAX_VIDEO_BYTES, so as long a timeout. Retried at jittered, growing intervals: RQ's own have no jitter.
def _download_options() -> dict:
    intervals = [round(d, 1) for d in backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP)]
    # RQ hints whole seconds but schedules a retry at timedelta(seconds=interval): fractions keep the jitter.
    retry = Retry(max=DOWNLOAD_RETRIES, interval=intervals)  # type: ignore[arg-type]
    return dict(retry=retry, timeout=DOWNLOAD_TIMEOUT, **_KEEP)


# How a work line's job becomes an RQ task: the task's function, and its name (``task_id``).
_TASKS: dict[str, tuple[str, Callable[[str], str]]] = {
    **{line: (DOWNLOAD_TASK, download_task_name) for line in DOWNLOADS},
    DRAFT_CACHE: (DRAFT_CACHE_TASK, draft_cache_task_name),
}


def feed(svc: "Services") -> Taken:
    """Move the jobs whose turn it is from the work lines into RQ, kind by kind in ``KINDS``' order (a result whose URL
    expires first), while fewer than ``AHEAD`` tasks wait in the RQ queue; what it took (``Taken.moved``, ``Taken.idle``).
    Called by the workers only (a lane that takes a task, the dispatcher's feed woken by new work or at its bound): a
    callback's answer waits for none of it. With no work waiting it costs Redis two commands (one script, one lookup)."""
    taken = svc.store.work.take(dict.fromkeys(KINDS, svc.queue.key), AHEAD, time.time())
    queue_handed(svc, taken.items)
    return taken


def queue_handed(svc: "Services", handed: Handed, own: str | None = None) -> None:
    """Queue the RQ tasks of work taken from the lines (``feed``) or at once by the step that added it (``AddWork``,
    when no line held any), in one MULTI (``WorkLines.queued``). Should this process die first, each job comes due as
    its move's lease lapses, and its check puts the work back in line (``ensure_download``, ``ensure_draft_cache``).
    Each task has an id of its own (``task_id``), which a download's lock names for ``download_pending`` (its own part:
    8 bytes, where the whole id would be a string of its own for the lock's hours); ``own``: the part the step that
    handed a download at once took the lock with, which so needs no relabel."""
    if not handed:
        return
    pipe = svc.redis.pipeline(transaction=True)
    for kind, members in handed.items():
        func, name = _TASKS[kind]
        for member in members:
            job_id = member_job(member)
            queued = task_id(name(job_id), own if kind in DOWNLOADS else None)
            svc.queue.enqueue_call(func, (job_id,), job_id=queued, description=f"{kind} {job_id}",
                                   pipeline=pipe, **_download_options())
            if kind in DOWNLOADS and own is None:
                svc.store.locks.relabel(svc.store.keys.download_lock(job_id), own_part(queued), pipe)
        svc.store.work.queued(kind, members, pipe)
    pipe.execute()
