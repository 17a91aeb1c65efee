"""Verified callbacks that came before their job knew its task, kept an hour until it does.

That is a callback on the static URL for a task not tracked yet, or one that overtook
BFL's answer to our own submission.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fluxhook.bfl.reports import parse_callback
from fluxhook.lifecycle.applying import apply_report

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.kept_callbacks")


def keep_callback(svc: Services, bfl_id: str, body: bytes) -> str | None:
    """Keep a callback verified by the static secret for a task no job tracks yet; apply it at once
    if a job learned the task meanwhile."""
    svc.store.kept.keep_for_task(bfl_id, body)
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
    """Apply what was kept for ``job`` (early on its own URL, or on the static URL for its task), if anything.

    Whoever takes a kept body first applies it; a body naming another task than the job's is dropped.
    """
    if not job.bfl_id:
        return None
    outcome = None
    taken = svc.store.kept.take(job.id, job.bfl_id)
    for i, (_key, body) in enumerate(taken):
        try:
            report = parse_callback(body)
            if report.bfl_id != job.bfl_id:
                log.warning("kept callback names another task than its job's; dropped", extra={"job_id": job.id})
                continue
            outcome = apply_report(svc, job.id, report, source="webhook", confirmed=False, job=job,
                                   attempt="webhooks")
        except BaseException:
            for unapplied in taken[i:]:  # back for the next attempt
                svc.store.kept.put_back(*unapplied)
            raise
    return outcome
