"""Verified callbacks that came before their job knew its task, kept an hour until it does.

That is a callback on the static URL for a task not tracked yet (kept under the account whose secret
proved it, within that account's bounds), or one that overtook BFL's answer to our own submission
(kept for that job alone).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Callable

from fluxhook.bfl.reports import parse_callback
from fluxhook.core.errors import RateLimited
from fluxhook.lifecycle.steps.applying import apply_report, from_callback
from fluxhook.store.kept_callbacks import KEPT_BYTES_PER_ACCOUNT, KEPT_PER_ACCOUNT

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.kept_callbacks")

# A callback refused for room is retried by BFL: soon, since room frees as soon as a kept one's task is tracked.
RETRY_AFTER = 60.0


def keep_callback(svc: Services, account: str, bfl_id: str, body: bytes) -> str | None:
    """Keep a callback proven by ``account``'s static secret for a task no job tracks yet; apply it at once if a
    job learned the task meanwhile (and may take it: ``apply_kept_callback``).

    ``RateLimited`` once the account's secret has as much kept as it may (``KEPT_PER_ACCOUNT``,
    ``KEPT_BYTES_PER_ACCOUNT``): only callbacks for tasks nobody tracks are ever refused for it, so a made-up
    task id costs its sender, never a tracked task's callback, and BFL's retry of a real one finds room.
    """
    wait = svc.store.kept.keep_for_task(account, bfl_id, body)
    if wait > 0:
        raise RateLimited(f"this account's webhook secret has {KEPT_PER_ACCOUNT} callbacks or "
                          f"{KEPT_BYTES_PER_ACCOUNT // 2**20} MiB kept for tasks nobody tracks; track the task "
                          "(POST /v1/jobs/track) and BFL's retry is applied", retry_after=min(wait, RETRY_AFTER))
    # The job may have learned its task between our look-up and the keep, and found nothing then.
    job = svc.jobs.get_by_bfl_id(bfl_id)
    return apply_kept_callback(svc, job) if job is not None else None


def keep_early_callback(svc: Services, job_id: str, body: bytes) -> str | None:
    """Keep a callback proven by a job's own secret that came before BFL's answer to its submission.

    Kept for that job only, and applied only if it names the task BFL then gives the job: a job's
    secret must be worth nothing for any other job.
    """
    svc.store.kept.keep_for_job(job_id, body)
    job = svc.jobs.get(job_id)
    return apply_kept_callback(svc, job) if job is not None and job.bfl_id else None


def apply_kept_callback(svc: Services, job: Job) -> str | None:
    """Apply what was kept for ``job``, if anything: early on its own URL, or, for a tracked job only, on the static
    URL for its task with its own account's secret. A static secret proves only tasks its account submitted and
    its app tracked, whichever came first, the callback or the track; never a task fluxhook submitted for a job.

    Whoever takes a kept body first applies it; a body naming another task than the job's is dropped.
    """
    if not job.bfl_id:
        return None
    kept = svc.store.kept
    taken: list[tuple[bytes, Callable[[bytes], object]]] = []
    body = kept.take_for_job(job.id)
    if body is not None:
        taken.append((body, partial(kept.keep_for_job, job.id, putting_back=True)))
    if job.tracked:
        account = svc.config.account(job.account).name
        body = kept.take_for_task(account, job.bfl_id)
        if body is not None:
            taken.append((body, partial(kept.keep_for_task, account, job.bfl_id, putting_back=True)))
    outcome = None
    for i, (body, _put_back) in enumerate(taken):
        try:
            report = parse_callback(body)
            if report.bfl_id != job.bfl_id:
                log.warning("kept callback names another task than its job's; dropped", extra={"job_id": job.id})
                continue
            outcome = apply_report(svc, job.id, report, from_callback(), job=job)
        except BaseException:
            for unapplied, put_back in taken[i:]:  # back for the next attempt
                put_back(unapplied)
            raise
    return outcome
