"""The job page's Cancel button (``POST /jobs/{id}/cancel``): a CSRF-protected form, like the page's Delete, that
cancels the job as ``POST /v1/jobs/{id}/cancel`` does and returns to its page.

Its route belongs to the dashboard's blueprint, so its session check and headers apply to it."""

from __future__ import annotations

import logging

from flask import redirect, render_template, url_for

from fluxhook.core.errors import AlreadyEnded, JobNotFound
from fluxhook.core.job import is_job_id
from fluxhook.lifecycle.steps.callers import ADMIN

from . import dashboard_session as auth
from .canceling import cancel_in_room
from .dashboard import bp
from .replicated import replicated

log = logging.getLogger("fluxhook.dashboard")


@bp.post("/jobs/<job_id>/cancel")
@replicated
@auth.csrf_checked("the cancel form did not carry this session's CSRF token: reload the job's page and try again")
def cancel_job_form(job_id: str):
    """Cancel the job (the dashboard is an admin's: any job), then show its page; one that had ended stays as it is."""
    try:
        cancel_in_room(ADMIN, job_id)
        log.info("job canceled from the dashboard", extra={"job_id": job_id})
    except JobNotFound:
        return render_template("dashboard/missing.html", job_id=job_id if is_job_id(job_id) else None), 404
    except AlreadyEnded:
        pass  # its page says how it ended
    return redirect(url_for("dashboard.job_page", job_id=job_id), 303)
