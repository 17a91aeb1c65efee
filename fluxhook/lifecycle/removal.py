"""Removing a job and everything kept for it: the record, its image or video, their thumbnail, poster and
draft cache, its timeline, its notifications."""

from __future__ import annotations

from fluxhook.lifecycle.steps import task_inputs, timeline
from fluxhook.media import draft_caches, posters, thumbnails
from fluxhook.services import Services


def remove_job(svc: Services, job_id: str) -> bool:
    """Remove the job and all that belongs to it; False if there was no record (its leftovers go anyway)."""
    progress, _ = svc.store.deliveries.progress_of(job_id)  # read while its record is there: its messages' ids
    # The storage key as deleted, not as read before: a download may have stored the image in between.
    storage_key = svc.jobs.delete(job_id)
    if storage_key:
        svc.storage.delete(storage_key)
    if storage_key is not None:
        # Made beside the result, if they could be (deleting a missing file is harmless).
        for key in (thumbnails.key_for(job_id), posters.key_for(job_id), draft_caches.key_for(job_id),
                    task_inputs.key_for(job_id)):
            svc.storage.delete(key)
    else:
        svc.jobs.forget(job_id)  # the record expired by its TTL: only index entries are left
    timeline.forget(svc.store, job_id)
    svc.store.deliveries.forget_job(job_id, progress)  # its notifications, their attempts and retries
    return storage_key is not None
