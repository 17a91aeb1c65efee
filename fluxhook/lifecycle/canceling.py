"""Canceling a job (``POST /v1/jobs/{id}/cancel``, the CLI's ``cancel``, the dashboard's button): a queued job ends
``canceled``, never sent and nothing charged; a submitted or ready one ``canceled`` at once, BFL's charge kept and its
result never downloaded; an ended one stays as it is (``AlreadyEnded``, 409)."""

from __future__ import annotations

from fluxhook.core.errors import AlreadyEnded, JobNotFound, SendUnderWay
from fluxhook.core.job import Job, cancel_ending
from fluxhook.lifecycle.steps import ending, recorded
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.services import Services

# How long a cancel waits for BFL's answer to a send of the job under way at that very moment (about a second):
# that answer decides whether the job ends unsent or as one BFL has.
SEND_WAIT = 15.0


def cancel_job(svc: Services, caller: Caller, job_id: str, *, wait: float = SEND_WAIT) -> Job:
    """Cancel the caller's job; the job as it is then. ``JobNotFound`` for no job or another key's (it stays as it
    is), ``AlreadyEnded`` for an ended one, ``SendUnderWay`` (503) when BFL's answer to its send did not come within
    ``wait`` seconds (nothing changed: the cancel may be sent again)."""
    job = svc.jobs.get(job_id)
    if job is None or not caller.sees(job):
        raise JobNotFound(f"no job {job_id[:40]!r}")
    outcome = ending.end(svc, job.id, cancel_ending, wait=wait)
    if outcome == ending.Ended.GONE:
        raise JobNotFound(f"no job {job_id[:40]!r}")
    if outcome == ending.Ended.ALREADY:
        raise AlreadyEnded(f"the job has already ended ({recorded.current(svc, job.id).status}); it stays as it is")
    if outcome == ending.Ended.SENDING:
        raise SendUnderWay("the job is being sent to BFL at this moment; send the cancel again in a few seconds",
                           retry_after=5)
    return recorded.current(svc, job.id)
