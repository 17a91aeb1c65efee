"""The fallback sweep: hand due jobs to the check line (``store.check_line``), end the jobs whose deadline passed and
the items of canceled batches; O(jobs due), not O(jobs).
Free BFL slots are not its work (each worker's senders take them, ``worker/sending.py``), nor notifications (each
worker's notifier takes them, ``worker/notifying.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.lifecycle.batching import finish_cancels, finish_unmade
from fluxhook.lifecycle.deadlines import enforce_deadlines
from fluxhook.lifecycle.steps.pacing import pace
from fluxhook.services import Services

# Most jobs one sweep claims; the rest wait for the next sweep, a second later.
SWEEP_BATCH = 500


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    # Jobs ended at their deadline (Cancel-After).
    deadlines: int = 0
    # Whether any part had work now (the worker's sweeper looks whether it may rest only after one that had none).
    found: bool = True
    # Whether the deadlines' and batches' indexes may hold something (``Store.sweep_work``).
    rare: bool = True


def sweep(svc: Services, now: float | None = None, rare: bool = True) -> SweepReport:
    """Claim the jobs due by ``now`` and put each in the check line; end the jobs whose deadline passed; cut short the
    batches whose making stopped, and end those canceled; judge whether new sends wait for storage. One look first
    says which of these have anything to do (a sweep runs every second in every worker process, and most find
    nothing). ``rare``: whether the deadlines and batches may hold anything, as the caller last looked."""
    now = time.time() if now is None else now
    work = svc.store.sweep_work(now, rare)
    claim = now + CLAIM_LEASE
    due = svc.jobs.claim_due(now, SWEEP_BATCH, claim) if work.jobs else []
    svc.store.checks.add(due, claim)
    deadlines = enforce_deadlines(svc, now) if work.deadlines else 0
    if work.unmade:
        finish_unmade(svc, now)  # a batch it cuts short is canceled: the next sweep ends its items
    if work.canceling:
        finish_cancels(svc, now)
    # New sends wait while storage is behind, and go as it catches up: judged here, in every worker, from the
    # backlog the look above read.
    pace(svc, work.ready, now)
    return SweepReport(due=len(due), deadlines=deadlines,
                       found=any((work.jobs, work.deadlines, work.unmade, work.canceling)), rare=work.rare)
