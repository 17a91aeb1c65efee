"""The workers' tasks, taken fairly across keys: a token of one kind runs the job whose turn it is.

The RQ tasks that download and store results, fetch draft caches, make thumbnails and send notifications are
*tokens* (see ``fluxhook.store.work_lines``): each was queued with one job added to
its kind's work line, but which job it works on is chosen when it runs, by the slots' own rule of
turns (``lua/fair_turns.lua``). So one key's backlog holds another key's result back by at most one
task per worker, where RQ alone would take them first in, first out.
"""

from __future__ import annotations

from typing import Any, Callable

from fluxhook.lifecycle.draft_caches import store_draft_cache
from fluxhook.lifecycle.notifications import deliver
from fluxhook.lifecycle.storing import download_and_store
from fluxhook.lifecycle.thumbnailing import make_for_job
from fluxhook.services import Services
from fluxhook.store.work_lines import DOWNLOAD, DRAFT_CACHE, NOTIFY, THUMBNAIL

# What a token of each kind does to its job: the lifecycle's own step, as before tokens.
_STEPS: dict[str, Callable[[Services, str, bool], Any]] = {
    DOWNLOAD: lambda svc, job_id, last: download_and_store(svc, job_id, last_attempt=last),
    DRAFT_CACHE: lambda svc, job_id, last: store_draft_cache(svc, job_id, last_attempt=last),
    THUMBNAIL: lambda svc, job_id, last: make_for_job(svc, job_id),
    NOTIFY: lambda svc, job_id, last: deliver(svc, job_id, last_attempt=last),
}


def run_token(svc: Services, kind: str, token: str, *, last_attempt: bool) -> Any:
    """Run token ``token`` (an RQ task's id) of ``kind``: the step of the job it is bound to, or else of the
    job whose turn it is; None when no job waits (an extra token).

    The token stays bound to its job while RQ will retry it (a retryable failure with retries left, or
    its worker dying mid-task), so the retry resumes that job; it lets go once it ends otherwise.
    """
    job_id = svc.store.work.take(kind, token)
    if job_id is None:
        return None
    try:
        outcome = _STEPS[kind](svc, job_id, last_attempt)
    except BaseException:
        if last_attempt:
            svc.store.work.done(kind, token)
        raise
    svc.store.work.done(kind, token)
    return outcome


def run_queued_for(svc: Services, kind: str, job_id: str, *, last_attempt: bool) -> Any:
    """Run the step of ``kind`` for ``job_id`` directly: a task queued before tokens (an upgrade), which
    names its job and put nothing in a work line."""
    return _STEPS[kind](svc, job_id, last_attempt)
