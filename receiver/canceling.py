"""``POST /v1/jobs/{id}/cancel``: a queued job ends ``canceled`` unsent and unpaid, a submitted or ready one
``canceled`` at once with BFL's charge kept; an ended one answers 409 ``already_ended`` and stays as it is.

Its route joins the jobs blueprint (``/v1``), so it is authenticated as the job routes are: a key cancels only its
own jobs, another key's is 404 and stays as it is."""

from __future__ import annotations

from flask import g

from fluxhook.core.job import Job
from fluxhook.lifecycle.canceling import SEND_WAIT, cancel_job
from fluxhook.lifecycle.steps.callers import Caller

from .auth import require_bearer
from .bulkheads import bfl_calls
from .context import services
from .jobs import _present, bp
from .replicated import replicated


@bp.post("/jobs/<job_id>/cancel")
@replicated
def cancel(job_id: str):
    """Cancel the job; answers it as it is then."""
    job = cancel_in_room(require_bearer(), job_id)
    g.job_id = job.id
    return _present(job)


def cancel_in_room(caller: Caller, job_id: str) -> Job:
    """Cancel a job for a request. A cancel that meets the job's send waits for BFL's answer in the room of requests
    waiting on BFL, its work permit set aside (docs/operating.md: a hanging BFL holds back no callback or read); with the room
    full it does not wait (503 ``send_under_way``, to be sent again)."""
    with bfl_calls().enter() as room:
        return cancel_job(services(), caller, job_id, wait=SEND_WAIT if room else 0)
