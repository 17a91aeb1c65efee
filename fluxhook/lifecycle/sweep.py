"""The fallback sweep: hand due jobs to checks, and finished jobs' notifications to notify tasks; O(jobs due),
not O(jobs). Free BFL slots are not its work: each worker's senders take them (``worker/sending.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fluxhook.lifecycle.steps.enqueueing import enqueue_checks, enqueue_notifications, restore_work
from fluxhook.services import Services

# Most jobs one sweep claims; the rest wait for the next sweep, a second later.
SWEEP_BATCH = 500
# A claimed job whose check never ran (its worker killed before it was queued or taken) comes
# due again after this long; a check that runs later finds its claim superseded and does nothing.
CHECK_CLAIM_LEASE = 90.0
# Most notifications one sweep queues; a job taken from the outbox but not queued is taken again after the lease.
NOTIFY_BATCH = 500
NOTIFY_LEASE = 60.0


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    notifications: int = 0


def sweep(svc: Services, now: float | None = None) -> SweepReport:
    """Claim the jobs due by ``now`` and queue a check of each; drain the notification outbox into the notify line;
    put back in line the work whose move into RQ a dead process left unfinished."""
    now = time.time() if now is None else now
    claim = now + CHECK_CLAIM_LEASE
    due = svc.jobs.claim_due(now, SWEEP_BATCH, claim)
    if due:
        enqueue_checks(svc.control_queue, due, claim)
    notifications = drain_notifications(svc, now)
    restore_work(svc, now)
    return SweepReport(due=len(due), notifications=notifications)


def drain_notifications(svc: Services, now: float) -> int:
    """Put each job of the outbox in the notify line; returns how many.

    Taking from the outbox is atomic (two sweeps never take the same job), and a job leaves it
    only in the MULTI that puts it in line, so a crash in between delays a notification by the
    lease but never loses it.
    """
    taken = svc.jobs.claim_notifications(now, NOTIFY_BATCH, now + NOTIFY_LEASE)
    if not taken:
        return 0
    pipe = svc.redis.pipeline(transaction=True)
    queued = enqueue_notifications(svc, taken, pipe)
    svc.jobs.notifications_queued(taken, pipeline=pipe)
    pipe.execute()
    return queued
