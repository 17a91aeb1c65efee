"""Asking BFL for a task's state: one poll, counted, turned into a report."""

from __future__ import annotations

import time

from fluxhook import metrics
from fluxhook.bfl.reports import BFLReport, report_from_payload
from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.errors import BFLUnavailable, FluxhookError, InvalidRequest
from fluxhook.core.job import Job
from fluxhook.lifecycle.steps import timeline
from fluxhook.services import Services


def poll_job(svc: Services, job: Job) -> BFLReport:
    """Poll BFL once for ``job``'s task; ``Task not found`` inside the grace period reads as Pending: BFL may not know
    a task for a moment after accepting it."""
    with tracing.job_span("fluxhook.poll", job.id, job.traceparent):
        return _poll(svc, job)


def _poll(svc: Services, job: Job) -> BFLReport:
    svc.jobs.count(job.id, "polls")
    try:
        payload = svc.bfl(job.account).get_result(job.bfl_id or "", job.polling_url)
        if isinstance(payload, dict) and "status" not in payload:
            payload = dict(payload, status=st.BFL_TASK_NOT_FOUND)
        try:
            report = report_from_payload(payload, bfl_id=job.bfl_id)
        except InvalidRequest as exc:
            # An answer we cannot read is BFL failing for now: the schedule polls again, the sweep goes on.
            raise BFLUnavailable(f"BFL's answer to a poll could not be read: {exc.message}") from None
    except FluxhookError as exc:
        metrics.count(svc, "fluxhook_polls", outcome=exc.code, account=svc.config.account(job.account).name)
        timeline.record(svc, job.id, "poll", error=exc.code)
        raise
    metrics.count(svc, "fluxhook_polls", outcome=st.status_label(report.status), account=svc.config.account(job.account).name)
    if job.polls == 0 or report.status != job.bfl_status:
        # The first, and those with news: a running job is polled every few seconds (``core.live``), and the
        # timeline keeps its newest TIMELINE_CAP entries (the job's polls are counted in ``attempts.polls``).
        timeline.record(svc, job.id, "poll", answer=report.status)
    submitted_at = job.submitted_at or job.created_at
    if report.status == st.BFL_TASK_NOT_FOUND and time.time() - submitted_at < svc.config.callback_grace_seconds:
        return BFLReport(bfl_id=report.bfl_id, status=st.BFL_PENDING)
    return report
