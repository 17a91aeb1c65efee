"""A job as recorded now, read again after a step that may have changed it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxhook.core.errors import JobNotFound
from fluxhook.core.job import Job

if TYPE_CHECKING:
    from fluxhook.services import Services


def current(svc: Services, job_id: str) -> Job:
    """The job as recorded now; ``JobNotFound`` once it is gone (deleted meanwhile)."""
    job = svc.jobs.get(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id[:40]!r}")
    return job
