"""Retention: job records, batches and images older than ``JOB_RETENTION_DAYS`` are removed (a scheduled task)."""

from __future__ import annotations

import logging
import time

from fluxhook.core.batch import batch_id_floor
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps import batch_inputs
from fluxhook.services import Services

log = logging.getLogger("fluxhook.retention")

BATCH = 1000


def purge_expired(svc: Services, now: float | None = None) -> int:
    """Remove every job made before the retention cutoff, with its image, and stray old files; how many jobs. Only the
    expired ids are read (the job index sorts by creation time), a batch at a time."""
    now = time.time() if now is None else now
    cutoff = now - svc.config.job_retention_days * 86400
    removed = 0
    while ids := svc.jobs.created_before(cutoff, BATCH):
        for job_id in ids:
            remove_job(svc, job_id)
            removed += 1
    # A batch goes with its items: its record, counts and indexes (its items are jobs, removed above), and its input.
    while batches := svc.store.batches.created_before(batch_id_floor(cutoff), BATCH):
        for batch_id in batches:
            batch_inputs.drop(svc, batch_id)
            svc.store.batches.forget(batch_id)
    files = svc.storage.remove_older_than(cutoff, partial_before=now - 3600)
    if removed or files:
        log.info("retention removed old jobs", extra={"jobs": removed, "files": files,
                                                       "retention_days": svc.config.job_retention_days})
    return removed
