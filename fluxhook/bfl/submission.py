"""Sending a job's task to BFL: with its own callback URL and secret, once, within its slot."""

from __future__ import annotations

import logging
import time

from fluxhook import timeline
from fluxhook import metrics
from fluxhook.recovery import schedule
from fluxhook import signing
from fluxhook import transitions as st
from fluxhook.backoff import backoff_delay
from fluxhook.bfl.client import CALL_BOUND
from fluxhook.errors import BFLError, BFLRateLimited, FluxhookError, RetryableError
from fluxhook.job import Job
from fluxhook.bfl.kept_callbacks import apply_kept_callback
from fluxhook.services import Services
from fluxhook.outcomes import SKIPPED
from fluxhook.store.keys import KEYS

log = logging.getLogger("fluxhook.submission")

# Outlasts one submission to BFL; one killed with its worker is started again soon after.
SUBMIT_LOCK_SECONDS = CALL_BOUND
# While BFL keeps answering 429 or cannot be reached, the pool waits at most this long between tries.
MAX_PAUSE = 60.0


def submission_lock_left(svc: Services, job_id: str) -> float:
    """Seconds until the lock of a submission of this job under way in some process expires; 0 if none is."""
    return svc.store.locks.seconds_left(KEYS.submit_lock(job_id))


def submit(svc: Services, job: Job) -> str:
    """Send a ``queued`` job that holds a slot to BFL, at most once at a time.

    Returns ``submitted``; ``queued`` when BFL answered 429 (the job is back in line and the
    pool pauses for Retry-After); ``skipped`` if another process is submitting it. Other BFL
    errors propagate.
    """
    lock = KEYS.submit_lock(job.id)
    if not svc.store.locks.take(lock, "1", SUBMIT_LOCK_SECONDS):
        return SKIPPED
    try:
        return _submit(svc, job)
    finally:
        svc.store.locks.release(lock)


def _submit(svc: Services, job: Job) -> str:
    config = svc.config
    body = dict(job.input or {},
                webhook_url=signing.job_webhook_url(config.public_base_url, config.secret_keys, job.id),
                webhook_secret=signing.job_webhook_secret(config.secret_keys, job.id))
    try:
        task = svc.bfl.submit(job.model or "", body)
    except BFLRateLimited as exc:
        metrics.count(svc, "fluxhook_submissions", outcome=exc.code)
        timeline.record(svc, job.id, "submission", outcome=exc.code)
        pause = wait_for_room(svc, job, exc.retry_after)
        log.info("job queued: BFL is at its limit", extra={"job_id": job.id, "retry_after": round(pause, 1)})
        return st.QUEUED
    except FluxhookError as exc:
        metrics.count(svc, "fluxhook_submissions", outcome=exc.code)
        timeline.record(svc, job.id, "submission", outcome=exc.code)
        raise
    metrics.count(svc, "fluxhook_submissions", outcome="submitted")
    timeline.record(svc, job.id, "submission", outcome="submitted", bfl_id=task["id"])
    now = time.time()
    svc.slots.accepted(svc.slots.pool_of(job))
    if not svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id=task["id"],
                               polling_url=task["polling_url"], bfl_status=st.BFL_PENDING, input=None,
                               submitted_at=now, due=schedule.first_poll_at(now, config.callback_grace_seconds)):
        log.warning("job gone before its submission was recorded", extra={"job_id": job.id, "bfl_id": task["id"]})
        return SKIPPED
    log.info("job submitted", extra={"job_id": job.id, "bfl_id": task["id"], "model": job.model})
    submitted = svc.jobs.get(job.id)
    try:
        if submitted is not None:
            apply_kept_callback(svc, submitted)  # BFL's callback may have overtaken its answer to us
    except Exception:
        # The task is at BFL and recorded: that must not read as a failed submission. The kept
        # callback stays kept (apply_kept_callback puts it back) for BFL's retry or a later look.
        log.exception("applying an early callback failed", extra={"job_id": job.id})
    return st.SUBMITTED


def wait_for_room(svc: Services, job: Job, retry_after: float | None) -> float:
    """Put the job back in line and pause its pool: BFL's Retry-After, or growing backoff if BFL keeps refusing."""
    pool = svc.slots.pool_of(job)
    strikes = svc.slots.strike(pool)
    pause = max(retry_after or 0.0, backoff_delay(strikes, base=1.0, cap=MAX_PAUSE))
    svc.slots.requeue(job, pause)
    return pause


def submit_queued(svc: Services, job_id: str) -> str:
    """Submit a queued job that was handed a slot; an error that will pass puts it back in line
    (and propagates, for RQ to record); any other, or an hour of them, fails the job."""
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.QUEUED:
        return SKIPPED
    try:
        return submit(svc, job)
    except Exception as exc:
        if isinstance(exc, RetryableError) and not schedule.timed_out(job.created_at, time.time()):
            wait_for_room(svc, job, None)
            raise
        message = exc.message if isinstance(exc, FluxhookError) else f"submission failed: {type(exc).__name__}"
        svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                            error={"code": _failure_code(exc), "message": message})
        if not isinstance(exc, BFLError):
            raise
        return st.FAILED


def _failure_code(exc: Exception) -> str:
    return "insufficient_credits" if getattr(exc, "code", None) == "insufficient_credits" else "bfl_error"
