"""Erasing a job and everything kept for it: the record, its image or video, their thumbnail, poster and draft cache,
its timeline, its notifications. Now (``erase``: ``lifecycle/removal.py``, retention), or, for a job whose DELETE came
while BFL ran its task, once it gives its slot back (``asked``, then ``erase_if_asked`` as ``running_on`` frees it):
BFL has no cancel, so the slot stays held while BFL counts the task."""

from __future__ import annotations

import logging
import time

from fluxhook.core import job as st
from fluxhook.lifecycle.steps import task_inputs, timeline
from fluxhook.media import draft_caches, posters, thumbnails
from fluxhook.services import Services

log = logging.getLogger("fluxhook.erasing")


def erase(svc: Services, job_id: str) -> bool:
    """Erase the job and all that belongs to it, its variants too; False if it had no record (its leftovers go anyway)."""
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
    # Its variants, each key recorded before its bytes were stored: after the record, so a variant made
    # meanwhile is either found here or deleted by its maker, who finds the record gone (``lifecycle/variants.py``).
    variants = svc.store.variants.take_all(job_id)
    if variants:
        svc.storage.delete_many(variants)
    timeline.forget(svc.store, job_id)
    svc.store.deliveries.forget_job(job_id, progress)  # its notifications, their attempts and retries
    return storage_key is not None


def asked(svc: Services, job_id: str) -> bool:
    """Mark the ended job to be erased once it gives its slot back; whether it still holds one (then
    ``erase_if_asked`` erases it as it frees it; else its caller erases it now). Marked first, looked at after: a slot
    freed meanwhile is seen either here or by the step that freed it."""
    svc.jobs.update(job_id, only_in=tuple(st.TERMINAL), delete_asked_at=time.time())
    return svc.slots.account_of(job_id) is not None


def erase_if_asked(svc: Services, job_id: str) -> bool:
    """Erase the job if a DELETE asked for it while it held its slot (``asked``): the step that gave the slot back
    calls this after. Whether it erased it."""
    job = svc.jobs.get(job_id)
    if job is None or job.delete_asked_at is None or svc.slots.account_of(job_id) is not None:
        return False
    log.info("job deleted: BFL's task of it ended", extra={"job_id": job_id, "bfl_id": job.bfl_id})
    return erase(svc, job_id)
