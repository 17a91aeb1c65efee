"""The fallback sweep: hand due jobs to checks, end the jobs whose deadline passed, and hand finished jobs'
notifications to notify tasks; O(jobs due), not O(jobs). Free BFL slots are not its work: each worker's senders
take them (``worker/sending.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fluxhook.lifecycle.deadlines import enforce_deadlines
from fluxhook.lifecycle.notifications import NOTIFY_BATCH, NOTIFY_LEASE, enter, move_due
from fluxhook.lifecycle.steps.enqueueing import enqueue_checks, restore_work
from fluxhook.services import Services

# Most jobs one sweep claims; the rest wait for the next sweep, a second later.
SWEEP_BATCH = 500
# A claimed job whose check never ran (its worker killed before it was queued or taken) comes
# due again after this long; a check that runs later finds its claim superseded and does nothing.
CHECK_CLAIM_LEASE = 90.0


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    notifications: int = 0
    # Jobs ended at their deadline (Cancel-After).
    deadlines: int = 0


def sweep(svc: Services, now: float | None = None) -> SweepReport:
    """Claim the jobs due by ``now`` and queue a check of each; drain the notification outbox into the notify line;
    put back in line the work whose move into RQ a dead process left unfinished. One look first says which of these
    have anything to do (a sweep runs every second in every worker process, and most find nothing)."""
    now = time.time() if now is None else now
    work = svc.store.sweep_work(now)
    claim = now + CHECK_CLAIM_LEASE
    due = svc.jobs.claim_due(now, SWEEP_BATCH, claim) if work.jobs else []
    if due:
        enqueue_checks(svc.control_queue, due, claim)
    deadlines = enforce_deadlines(svc, now) if work.deadlines else 0
    notifications = drain_notifications(svc, now) if work.notifications else 0
    if work.moving:
        restore_work(svc, now)
    return SweepReport(due=len(due), notifications=notifications, deadlines=deadlines)


def drain_notifications(svc: Services, now: float) -> int:
    """Make the messages of the outbox's events and put them in the notify line, and put back in line the messages
    whose next attempt is due; returns how many messages were made.

    Taking from the outbox is atomic (two sweeps never take the same member), and a member leaves it only in the
    MULTI that keeps its messages, so a crash in between delays a notification by the lease but never loses it.
    """
    made = 0
    taken = svc.jobs.claim_notifications(now, NOTIFY_BATCH, now + NOTIFY_LEASE)
    if taken:
        made = enter(svc, taken, now)
    move_due(svc, now)
    return made
