"""``POST /v1/jobs/{id}/cancel``: a queued job ends ``canceled`` unsent and unpaid, a submitted or ready one
``canceled`` at once with BFL's charge kept; an ended one answers 409 ``already_ended`` and stays as it is.

Its route joins the jobs blueprint (``/v1``), so it is authenticated as the job routes are: a key cancels only its
own jobs, another key's is 404 and stays as it is."""

from __future__ import annotations

from flask import g

from fluxhook.lifecycle.canceling import cancel_job

from .auth import require_bearer
from .context import services
from .jobs import _present, bp
from .replicated import replicated


@bp.post("/jobs/<job_id>/cancel")
@replicated
def cancel(job_id: str):
    """Cancel the job; answers it as it is then."""
    job = cancel_job(services(), require_bearer(), job_id)
    g.job_id = job.id
    return _present(job)
