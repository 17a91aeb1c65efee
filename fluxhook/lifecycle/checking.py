"""What the sweep does with one due job: poll BFL, repair a lost download, restart a stalled submission, or poll the
task of an ended job still holding its slot (``running_on``)."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.errors import BFLError, BFLRateLimited, BFLRedirectRefused
from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome, ReportOutcome
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import reconciling, running_on, schedule, submission, timeline, waits
from fluxhook.lifecycle.steps.applying import POLLED, apply_report
from fluxhook.lifecycle.steps.enqueueing import ensure_download, ensure_draft_cache
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.services import Services
from fluxhook.store.check_line import Check

log = logging.getLogger("fluxhook.checking")


def take_checks(svc: Services, most: int, rooms: Mapping[str, int] | None = None) -> list[Check]:
    """Up to ``most`` checks from the check lines whose turn it is across keys, at most ``rooms[account]`` of each BFL
    account's (None: up to ``most`` of each), each the caller's to run with ``check_job``."""
    return svc.store.checks.take(most, rooms)


def check_job(svc: Services, job_id: str, claim: float) -> CheckOutcome | ReportOutcome:
    """Act on a job the sweep claimed with ``claim``, held by it anew for the check; a check whose claim was superseded
    (the job checked, changed or claimed again since) does nothing."""
    now = time.time()
    hold = now + CLAIM_LEASE
    if not svc.jobs.confirm_claim(job_id, claim, hold):
        return CheckOutcome.SKIPPED
    job = svc.jobs.get(job_id)
    if job is None:
        svc.jobs.due_no_more(job_id)
        return CheckOutcome.SKIPPED
    with tracing.job_span("fluxhook.check", job.id, job.traceparent):
        return _check(svc, job, now, hold)


def _check(svc: Services, job: Job, now: float, hold: float) -> CheckOutcome | ReportOutcome:
    # ``hold``: the job's due time as this check's claim set it, which a move of its work into RQ since would change.
    if job.status == st.STORED and job.draft_cache_source and ensure_draft_cache(svc, job, hold):
        svc.jobs.let_go(job.id)  # due no more: its draft cache is back in line
        log.warning("stored job's draft cache was not queued; put back in line", extra={"job_id": job.id})
        return CheckOutcome.DRAFT_CACHE_REQUEUED
    if job.terminal:
        # Due only while it keeps its slot for a task BFL runs on, or while its draft cache was on its way into RQ.
        return running_on.check(svc, job, now)
    if job.status == st.QUEUED:
        return _restart_submission(svc, job, now)
    if job.status == st.READY:
        return _repair_download(svc, job, now, hold)
    if reconciling.awaits_task(job):
        return reconciling.check_uncertain(svc, job, now)  # no task to poll: it may be at BFL, never sent again
    return poll_submitted(svc, job, now)


def poll_submitted(svc: Services, job: Job, now: float) -> CheckOutcome | ReportOutcome:
    """Poll BFL for a ``submitted`` job whose callback has not come; a Ready takes the callback's path."""
    grace = svc.config.callback_grace_seconds
    submitted_at = job.submitted_at or job.created_at
    try:
        report = poll_job(svc, job)
    except BFLError as exc:
        if schedule.timed_out(submitted_at, now):
            return _time_out(svc, job)
        rate_limited = isinstance(exc, BFLRateLimited)
        due = (schedule.rate_limited_until(now, exc.retry_after, job.polls + 1, grace) if rate_limited
               else schedule.next_poll_at(submitted_at, job.polls + 1, now, grace))
        svc.jobs.update(job.id, only_in=(st.SUBMITTED,), due=due)
        if rate_limited:
            log.info("poll refused with 429; backing off", extra={"job_id": job.id, "retry_after": exc.retry_after})
        elif isinstance(exc, BFLRedirectRefused):
            # Not a fault of ours to trace: BFL points the poll somewhere the key must not go, and will
            # again. Said once per job; the job's timeline has every one, and it is polled on schedule.
            refused = [event for event in timeline.recent(svc.store.timeline, job.id)
                       if event.get("kind") == "poll" and event.get("error") == BFLRedirectRefused.code]
            if len(refused) <= 1:
                log.warning("poll redirected off the allowlist; not followed",
                            extra={"job_id": job.id, "bfl_id": job.bfl_id, "error": exc.message})
        else:
            raise  # RQ records it; the due index retries it
        return CheckOutcome.RESCHEDULED
    outcome = apply_report(svc, job.id, report, POLLED, job=job)
    if st.is_running(report.status):
        if schedule.timed_out(submitted_at, now):
            return _time_out(svc, job)
        # Watched: polled again at the watched pace from this poll's start (the errors above keep the unwatched one).
        # Whether it is watched is the record's, read in the same step.
        svc.jobs.update(job.id, only_in=(st.SUBMITTED,), due=schedule.next_poll_at(submitted_at, job.polls + 1, now, grace),
                        due_if_watched=schedule.next_poll_at(submitted_at, job.polls + 1, now, grace, watched=True))
    log.info("job polled", extra={"job_id": job.id, "bfl_id": job.bfl_id, "bfl_status": report.status,
                                  "outcome": outcome})
    return outcome


def _time_out(svc: Services, job: Job) -> CheckOutcome:
    if svc.jobs.transition(job.id, st.FAILED, only_from=(st.SUBMITTED,),
                           error={"code": "timeout", "message": "BFL gave no result within an hour"},
                           effects=accounting.on_end(job, st.FAILED, time.time())):
        log.warning("job timed out", extra={"job_id": job.id, "bfl_id": job.bfl_id})
    return CheckOutcome.TIMEOUT


def _repair_download(svc: Services, job: Job, now: float, hold: float) -> CheckOutcome:
    # Ready for minutes with no download queued, scheduled or running: one was lost (a process died
    # between recording Ready and queueing, or RQ dropped it), so this queues it again.
    repaired = ensure_download(svc, job, hold)
    svc.jobs.update(job.id, only_in=(st.READY,), due=now + schedule.READY_RECHECK)
    if repaired:
        log.warning("ready job had no download queued; queued one", extra={"job_id": job.id})
        return CheckOutcome.DOWNLOAD_REQUEUED
    return CheckOutcome.RESCHEDULED


def _restart_submission(svc: Services, job: Job, now: float) -> CheckOutcome:
    # A job handed a slot that did not reach BFL within the lease: its submit task was lost, or is still at it (looked
    # at again as its lease ends); one whose send began and never ended (its process died mid-send) may be at BFL: never
    # sent again, it awaits BFL's word on its task. A job without a slot waited out of line (the budget refused it): it is due.
    lock = submission.send_lock(svc, job.id, now)
    if lock.left:
        svc.jobs.update(job.id, only_in=(st.QUEUED,), due=now + lock.left + 1)
        return CheckOutcome.RESCHEDULED
    if lock.lost:
        lost = submission.recover_lost_send(svc, job)
        return CheckOutcome.AWAITING_TASK if lost == st.SUBMITTED else CheckOutcome.SKIPPED
    stalled = svc.slots.holds(job)
    if not stalled:
        # Back in line only once the budget would let it go: waiting there, it would take slots ahead of
        # the job whose reservation it waits for, and hand them back, again and again.
        still = submission.wait_out_of_line(svc, job)
        if still is not None:
            return CheckOutcome.TIMEOUT if still == st.FAILED else CheckOutcome.RESCHEDULED
    svc.slots.requeue(job)
    waits.back_in_line(svc, job)
    if stalled:
        log.warning("stalled submission put back in line", extra={"job_id": job.id})
    else:
        log.info("waiting job put back in line", extra={"job_id": job.id})
    return CheckOutcome.REQUEUED
