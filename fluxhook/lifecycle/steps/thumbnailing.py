"""A stored job's thumbnail, made by its download task once the job is stored (``storing``).

Making one is best effort: a thumbnail that cannot be made or stored never fails the job. It is
made after the job is stored, not before: decoding a full-size image costs as much as the download
itself, and a preview must not delay an image.
"""

from __future__ import annotations

import io
import logging

from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.job import Job
from fluxhook.media.thumbnails import key_for, make_thumbnail
from fluxhook.services import Services

log = logging.getLogger("fluxhook.thumbnailing")


def make_for_job(svc: Services, job_id: str) -> str | None:
    """Make and store the thumbnail of a stored job's image; its key, or None if there is none (logged)."""
    job = svc.jobs.get(job_id)
    return None if job is None else make_for(svc, job)


def make_for(svc: Services, job: Job) -> str | None:
    """``make_for_job`` for the job as its caller knows it (as its download just stored it: not read again)."""
    if job.status != st.STORED or not job.storage_key or job.thumbnail_key:
        return None
    job_id = job.id
    key = key_for(job_id)
    # A video's thumbnail is made from its poster frame.
    source_key = job.poster["key"] if job.video and job.poster else job.storage_key
    try:
        with tracing.job_span("fluxhook.thumbnail", job.id, job.traceparent):
            source = svc.storage.open(source_key)
            if source is None:
                return None
            with source:
                svc.storage.put(key, io.BytesIO(make_thumbnail(source)))
    except Exception as exc:  # a preview is never worth failing anything over, whatever went wrong
        log.warning("thumbnail not made", extra={"job_id": job_id, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return None
    if not svc.jobs.set_thumbnail(job_id, key):
        svc.storage.delete(key)  # the job was deleted meanwhile: leave no stray file
        return None
    return key
