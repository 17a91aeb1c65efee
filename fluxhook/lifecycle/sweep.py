"""The fallback sweep: hand due jobs to the check line (``store.check_line``), end the jobs whose deadline passed and
the items of canceled batches; O(jobs due), not O(jobs). And the judgement of sends paced by storage (``core.pacing``):
the rule the settings and the catalog give, judged by each worker's sweep from the backlog its one look read, and read
as it stands for /metrics and the dashboard. Free BFL slots are not its work (each worker's senders take them,
``worker/sending.py``), nor notifications (each worker's notifier takes them, ``worker/notifying.py``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from fluxhook.core.config import Config
from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.core.pacing import PacingRule
from fluxhook.lifecycle.batching import finish_cancels, finish_unmade
from fluxhook.lifecycle.deadlines import enforce_deadlines
from fluxhook.lifecycle.steps import waits
from fluxhook.services import Services
from fluxhook.store.pacing import Judged

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


def wake_held_at_start(svc: Services) -> int:
    """A process starts with the settings it was given: when its daily credit limits (``BFL_DAILY_CREDIT_LIMIT``, each
    account's) are not those the last process started with, every job held aside is looked at again now, not at its
    reason's end; a restart with the same settings wakes none (a worker crashing in a loop sends no wave of checks).
    How many."""
    limits = json.dumps([svc.config.bfl_daily_credit_limit,
                         *((account.name, account.daily_credit_limit) for account in svc.config.accounts)])
    return waits.wake_held(svc, every=True) if svc.store.usage.limits_changed(limits) else 0


def rule_of(config: Config) -> PacingRule:
    """The pacing rule: ``STORE_PACING_SHARE`` of the shortest result URL life the catalog gives (an image's 10
    minutes, unless ``BFL_MODELS_FILE`` says shorter), and ``STORE_PACING_FLOOR``. The shortest of any model, not of
    the models in the backlog: what this saves (a read of each result's life) costs a video-only deployment pacing
    early, never a lost result."""
    lives = [model.result_url_life for model in config.catalog.models.values()]
    return PacingRule(config.store_pacing_share, float(min(lives)) if lives else 600.0, config.store_pacing_floor)


def pace(svc: Services, ready: int | None, now: float) -> Judged | None:
    """Judge whether new sends wait for storage, given ``ready`` results not stored (read by the caller; None: not
    read this time): only at the floor or past it, or while this process's last judgement held them (to lift its
    mark); else None, and nothing asked of Redis."""
    rule = rule_of(svc.config)
    if ready is not None:
        svc.store.pacer.near = ready >= rule.floor // 2
    if ready is None or not rule.on or (ready < rule.floor and not svc.store.pacer.judging):
        return None
    return svc.store.pacer.judge(now, rule)


def backlog_now(svc: Services, now: float) -> Judged:
    """The backlog and the rate storage kept now, as a judgement would find them (nothing written): for /metrics and
    the dashboard."""
    return svc.store.pacer.read(now, rule_of(svc.config))
