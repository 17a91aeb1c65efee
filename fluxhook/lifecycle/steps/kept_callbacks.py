"""Callbacks that came before their job knew its task, kept an hour until it does.

That is a callback on the static URL for a task no job of its account tracks yet (only that the task was reported
is kept: such a callback proves nothing of its task, so the jobs that track it later ask BFL), or one that
overtook BFL's answer to our own submission (its body, kept for that job alone).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from fluxhook.bfl.reports import parse_callback
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle.steps.applying import Notes, apply_report, from_callback, hint

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.kept_callbacks")


def _no_notes(job: Job) -> Notes:
    return lambda outcome: ()


def keep_callback(svc: Services, account: str, bfl_id: str, notes_for: Callable[[Job], Notes] = _no_notes,
                  ) -> list[tuple[Job, ReportOutcome]]:
    """Remember that ``account``'s static secret reported task ``bfl_id``, for the jobs that track it within the hour
    (``apply_kept_callback``), and hint each job of that account tracking it now (one poll each, counted as a
    callback): what became of each. ``notes_for(job)``: what to record with that job's outcome.

    Never refused: what is kept is a bit of a bitmap of fixed size (``store/kept_callbacks.py``). Kept first, then
    the trackers read: a track made meanwhile finds the bit or is found.
    """
    svc.store.kept.mark_reported(account, bfl_id)
    # Only the jobs tracking it through ``account``: its static secret may hint at no other.
    trackers = [job for job in svc.jobs.trackers(bfl_id) if svc.config.account(job.account).name == account]
    return [(job, hint(svc, job, attempt="webhooks", notes=notes_for(job))) for job in trackers]


def keep_early_callback(svc: Services, job_id: str, body: bytes) -> str | None:
    """Keep a callback proven by a job's own secret that came before BFL's answer to its submission, for that job only,
    applied only if it names the task BFL then gives the job: a job's secret must be worth nothing for any other job."""
    if not svc.store.kept.keep_for_job(job_id, body):
        # Gone or ended meanwhile: nothing of it will be submitted, so nothing is kept for it.
        return ReportOutcome.GONE if svc.jobs.get(job_id) is None else ReportOutcome.DUPLICATE
    job = svc.jobs.get(job_id)
    return apply_kept_callback(svc, job) if job is not None and job.bfl_id else None


def apply_kept_callback(svc: Services, job: Job) -> str | None:
    """Apply what was kept for ``job``, if anything: a body early on its own URL; for a tracked job, a report of its
    task on the static URL with its own account's secret (whichever came first, the callback or the track), which
    makes the job ask BFL at once. Never a static report to a job fluxhook submitted. Whoever takes a kept body first
    applies it (``apply_kept_body``)."""
    if not job.bfl_id:
        return None
    outcome = apply_kept_body(svc, job, svc.store.kept.take_for_job(job.id))
    if job.tracked and svc.store.kept.was_reported(svc.config.account(job.account).name, job.bfl_id):
        outcome = hint(svc, job, attempt="webhooks")
    return outcome


def apply_kept_body(svc: Services, job: Job, body: bytes | None) -> str | None:
    """Apply a body kept for ``job`` on its own URL, just taken from where it was kept (None: there was none, or
    none worth anything); what became of it. A body naming another task than the job's is dropped; one whose
    applying fails is put back, for the next attempt."""
    if body is None:
        return None
    try:
        report = parse_callback(body)
        if report.bfl_id != job.bfl_id:
            log.warning("kept callback names another task than its job's; dropped", extra={"job_id": job.id})
            return None
        return apply_report(svc, job.id, report, from_callback(), job=job)
    except BaseException:
        svc.store.kept.keep_for_job(job.id, body, putting_back=True)  # back for the next attempt
        raise
