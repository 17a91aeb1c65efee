"""Sending a job's task to BFL: with its own callback URL and secret, or queued while BFL is full."""

from __future__ import annotations

import logging
from . import signing
from . import status as st
from .errors import BFLError, BFLRateLimited, RetryableError
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
    svc.jobs.transition(job.id, st.SUBMITTED, bfl_id=task["id"], polling_url=task["polling_url"],
                        bfl_status=st.BFL_PENDING, input=None)
    log.info("job submitted", extra={"job_id": job.id, "bfl_id": task["id"], "model": job.model})
    submitted = svc.jobs.get(job.id)
    if submitted is not None:
        apply_kept_callback(svc, submitted)  # BFL's callback may have overtaken its answer to us


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
    except BFLError as exc:
        if isinstance(exc, RetryableError) and not last_attempt:
            raise
        svc.jobs.transition(job.id, st.FAILED, input=None, error={"code": _failure_code(exc), "message": exc.message})
        return st.FAILED
    return st.SUBMITTED


def _failure_code(exc: BFLError) -> str:
    return "insufficient_credits" if exc.code == "insufficient_credits" else "bfl_error"
