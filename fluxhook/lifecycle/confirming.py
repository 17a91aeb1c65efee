"""Confirming a failure report: a failure reported by callback is believed only once a poll of BFL agrees
(a forged or stale failure must not end a job BFL is still running)."""

from __future__ import annotations

from fluxhook.core import transitions as st
from fluxhook.core.outcomes import SKIPPED
from fluxhook.lifecycle.steps.applying import Origin, apply_report
from fluxhook.lifecycle.steps.enqueueing import release_confirm
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.services import Services


def confirm_outcome(svc: Services, job_id: str) -> str:
    """Poll BFL once for the job and apply its answer as confirmed; ``skipped`` once the job is gone or ended."""
    job = svc.jobs.get(job_id)
    if job is None or job.terminal:
        return SKIPPED
    # Released before polling: a failure report arriving during this poll must queue a check of its own.
    release_confirm(svc, job_id)
    report = poll_job(svc, job)
    # A Ready found by this poll was learned by polling; a confirmed failure was reported by callback.
    source = "poll" if report.status == st.BFL_READY else "webhook"
    return apply_report(svc, job.id, report, Origin(source, confirmed=True), job=job)
