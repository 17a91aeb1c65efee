"""A job ended on purpose while BFL runs its task on (docs/api.md, "Canceling frees nothing BFL still uses").

BFL has no cancel: the task of a job that ends ``canceled`` once sent (by a cancel or its deadline) keeps running at
BFL, and BFL counts it against the account's slots. So the job keeps its slot as it ends (``steps.ending``,
``Terms.task_runs``), and with it its place under its key's ``max_active`` and its model's limit, and the sweep goes
on polling its task on the poll schedule. The slot is given back (``JobStore.let_go``) once BFL
says the task ended, by its callback or a poll, or once the task's hour is over (``hold_over``); the lease of every
slot (``SLOT_LEASE``) frees it at the latest. Its caller sees the job ``canceled`` at once all the same: only its slot
waits for BFL. The accounts, a key's ``active`` and the dashboard count it, as "canceled, still running at BFL"
(``Slots.ended_holders``). A job whose DELETE came meanwhile is erased as it gives the slot back (``erasing``).
"""

from __future__ import annotations

import logging
import time

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.errors import BFLError, BFLRateLimited
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome, ReportOutcome
from fluxhook.lifecycle.steps import erasing, schedule
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.services import Services

log = logging.getLogger("fluxhook.running_on")


def hold_over(bfl_status: str | None, submitted_at: float, now: float) -> bool:
    """Whether the slot an ended job keeps for its task is free: BFL's word ``bfl_status`` (None: none heard) says the
    task ended (any word but a running one: Ready, a failure, ``Task not found`` past the grace period), or the task
    has had its hour (BFL runs none longer: ``schedule.timed_out``)."""
    ended = bfl_status is not None and not st.is_running(bfl_status)
    return ended or schedule.timed_out(submitted_at, now)


def on_report(svc: Services, job: Job, report: BFLReport) -> ReportOutcome:
    """BFL's report (a callback or a poll) on the task of an ended job: one that says the task ended frees the slot
    the job kept for it (``SLOT_FREED``); anything else changes nothing (``DUPLICATE``)."""
    if hold_over(report.status, job.submitted_at or job.created_at, time.time()) and svc.jobs.let_go(job.id).freed:
        log.info("slot given back: BFL's task of an ended job ended",
                 extra={"job_id": job.id, "bfl_id": job.bfl_id, "bfl_status": report.status})
        return ReportOutcome.SLOT_FREED
    return ReportOutcome.DUPLICATE


def check(svc: Services, job: Job, now: float) -> CheckOutcome:
    """The sweep's look at an ended job (due only while it keeps its slot): its task polled, its slot given back once
    ``hold_over``, else looked at again on the poll schedule. One that holds no slot (freed meanwhile) is due no more;
    erased then if a DELETE asked for it (``erasing``)."""
    outcome = _check(svc, job, now)
    if outcome != CheckOutcome.RESCHEDULED:
        erasing.erase_if_asked(svc, job.id)
    return outcome


def _check(svc: Services, job: Job, now: float) -> CheckOutcome:
    submitted_at = job.submitted_at or job.created_at
    if svc.slots.account_of(job.id) is None or hold_over(None, submitted_at, now):
        return _let_go(svc, job)
    if not job.bfl_id:
        # Its send's answer never came (``reconciling``): BFL may run a task of it all the same, for its hour.
        _again(svc, job, submitted_at + schedule.POLL_DEADLINE)
        return CheckOutcome.RESCHEDULED
    grace = svc.config.callback_grace_seconds
    try:
        report = poll_job(svc, job)
    except BFLRateLimited as exc:
        _again(svc, job, schedule.rate_limited_until(now, exc.retry_after, job.polls + 1, grace))
        return CheckOutcome.RESCHEDULED
    except BFLError as exc:
        # Not raised for RQ to record, as a running job's is: its caller has nothing more to learn of this task.
        log.info("poll of an ended job's task failed; polled again later", extra={"job_id": job.id, "error": exc.code})
        _again(svc, job, schedule.next_poll_at(submitted_at, job.polls + 1, now, grace))
        return CheckOutcome.RESCHEDULED
    if on_report(svc, job, report) == ReportOutcome.SLOT_FREED:
        return CheckOutcome.SLOT_FREED
    _again(svc, job, schedule.next_poll_at(submitted_at, job.polls + 1, now, grace))
    return CheckOutcome.RESCHEDULED


def _let_go(svc: Services, job: Job) -> CheckOutcome:
    freed = svc.jobs.let_go(job.id).freed
    if freed:
        log.info("slot given back: an ended job's task had its hour", extra={"job_id": job.id, "bfl_id": job.bfl_id})
    return CheckOutcome.SLOT_FREED if freed else CheckOutcome.SKIPPED


def _again(svc: Services, job: Job, when: float) -> None:
    # Only while it is due: a callback that gave the slot back meanwhile took it out for good.
    svc.jobs.due_again(job.id, when)
