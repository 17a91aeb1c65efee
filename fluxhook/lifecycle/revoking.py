"""Revoking an app key: the key answers 401 from then on, its submitted jobs finish (BFL has them, and they
are paid), and its queued jobs end ``failed`` / ``key_revoked``, unpaid (their reservations go back)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fluxhook.core import job as st
from fluxhook.core.holds import SUBMIT_LEASE
from fluxhook.lifecycle.steps import revoked_jobs
from fluxhook.store.keys import KEYS

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.keys")


def revoke(svc: Services, key_id: str) -> bool:
    """Revoke the key (False if there is no such key) and end its queued jobs; revoking twice is harmless."""
    if svc.store.app_keys.revoke(key_id, time.time()) == 0:
        return False
    ended = sum(end_queued(svc, job_id) for job_id in svc.store.app_keys.queued_jobs(key_id))
    log.info("app key revoked", extra={"key_id": key_id, "queued_jobs_ended": ended})
    return True


def end_queued(svc: Services, job_id: str) -> bool:
    """End a queued job of a revoked key, unless some process is sending it to BFL right now (then it
    is submitted and finishes like the key's other submitted jobs). Whether it ended."""
    lock = KEYS.submit_lock(job_id)
    # The job's submit lock, held for the one step that ends the job, as long as the step that ends any job holds it
    # (lifecycle/steps/ending.py): a process that dies frees it by then.
    if not svc.store.locks.acquire(lock, "revoked", SUBMIT_LEASE):
        return False
    try:
        job = svc.jobs.get(job_id)
        if job is None or job.status != st.QUEUED:
            return False
        return revoked_jobs.fail(svc, job)
    finally:
        svc.store.locks.release(lock, "revoked")
