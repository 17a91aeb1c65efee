"""Removing a job and everything kept for it: the record, its image and thumbnail, its timeline."""

from __future__ import annotations

from fluxhook import timeline
from fluxhook.media import thumbnails
from fluxhook.services import Services


def remove_job(svc: Services, job_id: str) -> bool:
    """Remove the job and all that belongs to it; False if there was no record (its leftovers go anyway)."""
    # The storage key as deleted, not as read before: a download may have stored the image in between.
    storage_key = svc.jobs.delete(job_id)
    if storage_key:
        svc.storage.delete(storage_key)
    if storage_key is not None:
        svc.storage.delete(thumbnails.key_for(job_id))  # made after the image, if it could be
    else:
        svc.jobs.forget(job_id)  # the record expired by its TTL: only index entries are left
    timeline.forget(svc.store, job_id)
    return storage_key is not None
