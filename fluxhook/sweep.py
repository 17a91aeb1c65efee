"""The fallback sweep: hand due jobs to checks and free slots to waiting jobs; O(jobs due), not O(jobs)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .queue import enqueue_checks, enqueue_submits
from .services import Services
from .slots import POOLS

# Most jobs one sweep claims; the rest wait for the next sweep, a second later.
SWEEP_BATCH = 500
# A claimed job whose check never ran comes due again after this long.
CLAIM_LEASE = 300.0


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    dispatched: int


def sweep(svc: Services, now: float | None = None) -> SweepReport:
    """Claim the jobs due by ``now`` and queue a check of each; queue the submission of jobs given a free slot."""
    now = time.time() if now is None else now
    claim = now + CLAIM_LEASE
    due = svc.jobs.claim_due(now, SWEEP_BATCH, claim)
    if due:
        enqueue_checks(svc.control_queue, due, claim)
    given = [job_id for pool in POOLS for job_id in svc.slots.dispatch(pool)]
    if given:
        enqueue_submits(svc.control_queue, given)
    return SweepReport(due=len(due), dispatched=len(given))
