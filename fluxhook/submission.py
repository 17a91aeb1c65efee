"""Sending a job's task to BFL: with its own callback URL and secret, or queued while BFL is full."""

from __future__ import annotations

import logging

from . import signing
from . import status as st
from .errors import BFLError, BFLRateLimited, FluxhookError, RetryableError
from .jobs import Job
from .orphans import apply_kept_callback
from .queue import enqueue_submit
from .services import Services

log = logging.getLogger("fluxhook.submission")


def submit(svc: Services, job: Job, task_input: dict) -> None:
    """Submit ``job`` (status ``queued``) to BFL and move it to ``submitted``; BFL's errors propagate."""
    config = svc.config
    body = dict(task_input,
                webhook_url=signing.job_webhook_url(config.public_base_url, config.secret_key, job.id),
                webhook_secret=signing.job_webhook_secret(config.secret_key, job.id))
    task = svc.bfl.submit(job.model or "", body)
    if not svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id=task["id"],
                               polling_url=task["polling_url"], bfl_status=st.BFL_PENDING, input=None):
        log.warning("job gone before its submission was recorded", extra={"job_id": job.id, "bfl_id": task["id"]})
        return
    log.info("job submitted", extra={"job_id": job.id, "bfl_id": task["id"], "model": job.model})
    submitted = svc.jobs.get(job.id)
    try:
        if submitted is not None:
            apply_kept_callback(svc, submitted)  # BFL's callback may have overtaken its answer to us
    except Exception:
        # The task is at BFL and recorded: that must not read as a failed submission. The kept
        # callback stays kept (apply_kept_callback puts it back) for BFL's retry or a later look.
        log.exception("applying an early callback failed", extra={"job_id": job.id})


def queue_for_later(svc: Services, job: Job, task_input: dict, error: BFLRateLimited) -> None:
    """Keep the job ``queued`` with its input and retry the submission after BFL's Retry-After."""
    svc.jobs.update(job.id, input=task_input)
    enqueue_submit(svc.queue, job.id, error.retry_after or 1)
    log.info("job queued: BFL is at its limit", extra={"job_id": job.id, "retry_after": error.retry_after})


def submit_queued(svc: Services, job_id: str, *, last_attempt: bool) -> str:
    """Submit a queued job; retryable refusals propagate, others (and the last attempt) fail the job."""
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.QUEUED:
        return "skipped"
    try:
        submit(svc, job, job.input or {})
    except Exception as exc:
        if isinstance(exc, RetryableError) and not last_attempt:
            raise
        message = exc.message if isinstance(exc, FluxhookError) else f"submission failed: {type(exc).__name__}"
        svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                            error={"code": _failure_code(exc), "message": message})
        if not isinstance(exc, BFLError):
            raise
        return st.FAILED
    return st.SUBMITTED


def _failure_code(exc: Exception) -> str:
    return "insufficient_credits" if getattr(exc, "code", None) == "insufficient_credits" else "bfl_error"
