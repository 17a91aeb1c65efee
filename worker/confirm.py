"""The confirm task: a failure reported by callback is believed only once a poll of BFL agrees."""

from __future__ import annotations

from fluxhook.core import transitions as st
from fluxhook.lifecycle.applying import apply_report
from fluxhook.lifecycle.enqueueing import release_confirm
from fluxhook.lifecycle.polling import poll_job

from .runtime import services


def confirm_outcome(job_id: str) -> str:
    """Poll BFL once for the job and apply its answer as confirmed."""
    svc = services()
    job = svc.jobs.get(job_id)
    if job is None or job.terminal:
        return "skipped"
    # Released before polling: a failure report arriving during this poll must queue a check of its own.
    release_confirm(svc, job_id)
    report = poll_job(svc, job)
    # A Ready found by this poll was learned by polling; a confirmed failure was reported by callback.
    source = "poll" if report.status == st.BFL_READY else "webhook"
    return apply_report(svc, job.id, report, source=source, confirmed=True, job=job)
