"""Liveness and readiness (public), and metrics (with a token)."""

from __future__ import annotations

import time

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from fluxhook import metrics as fm
from fluxhook.core.pacing import NONE
from fluxhook.core.wait_reasons import WaitReason
from fluxhook.credits import accounting, balance, reports
from fluxhook.lifecycle import readiness, sweep
from fluxhook.lifecycle.steps import waits
from fluxhook.lifecycle.steps.key_limits import key_route

from .auth import require_metrics_reader
from .context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Redis answers, a worker sent a heartbeat in the last minute, and storage is writable."""
    reasons = [check.reason for check in readiness.check(services()) if check.failed]
    if reasons:
        return {"status": "unavailable", "reasons": reasons}, 503
    return {"status": "ok", "reasons": []}


@bp.get("/metrics")
def metrics():
    """Prometheus text: event counters and histograms, and gauges read from Redis, so every process agrees.
    With an admin token or METRICS_TOKEN only."""
    require_metrics_reader()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(services()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _Snapshot:
    """A prometheus_client collector over Redis: what was recorded, and the state right now."""

    def __init__(self, svc):
        self.svc = svc

    def collect(self):
        svc = self.svc
        yield from fm.recorded_families(svc.store)
        now = svc.store.snapshot(time.time())
        yield fm.gauge("fluxhook_jobs", "Jobs by status.",
                       {(name,): n for name, n in now.by_status.items()}, ("status",))
        accounts = svc.store.slots.accounts_now()
        # By account and pool: sum by (pool) gives each pool's tasks in flight over every account.
        yield fm.gauge("fluxhook_bfl_slots_in_use", "BFL tasks in flight, by BFL account and slot pool.",
                       {(a.account.name, pool): n for a in accounts for pool, n in a.held.items()},
                       ("account", "pool"))
        yield fm.gauge("fluxhook_bfl_slots_waiting", "Jobs queued for a BFL slot, by slot pool.",
                       {(pool,): n for pool, n in now.waiting.items()}, ("pool",))
        yield fm.gauge("fluxhook_sweep_due", "Jobs due for a fallback check now (growing: the sweep falls behind).",
                       {(): now.due})
        # One series per account cooling down, none while every account takes tasks (alert on its presence).
        yield fm.gauge("fluxhook_bfl_account_cooling", "BFL accounts cooling down (taking no tasks), by account and "
                                                       "reason.",
                       {(a.account.name, a.cooling.reason): 1 for a in accounts if a.cooling is not None},
                       ("account", "reason"))
        yield fm.gauge("fluxhook_jobs_waiting", "Queued jobs waiting, by why (docs/fair-share.md; one waiting aside whose reason "
                                               "is not recorded is in none).",
                       {(reason,): n for reason, n in _waiting(svc).items()}, ("reason",))
        yield from _storage(svc, now.waiting, time.time())
        yield from _credits(svc, time.time())
        yield from fm.redis_families(svc.redis)
        yield fm.gauge("fluxhook_queue_depth", "Tasks waiting on an RQ queue.", {(svc.queue.name,): svc.queue.count},
                       ("queue",))
        yield fm.gauge("fluxhook_failed_tasks", "Tasks in an RQ queue's failed registry.",
                       {(svc.queue.name,): svc.queue.failed_job_registry.count}, ("queue",))
        yield fm.gauge("fluxhook_checks_waiting", "Checks of due jobs waiting for a worker's checker (growing: the "
                                                  "checkers fall behind).", {(): svc.store.checks.waiting()})


def _storage(svc, waiting: dict[str, int], now: float):
    """How many seconds of storing wait (the results BFL finished that fluxhook has not stored, at the rate it stored
    over the last minute): what an autoscaler scales worker processes on; and how many sends wait for storage."""
    judged = sweep.backlog_now(svc, now)
    seconds = judged.backlog.seconds
    # No rate yet (a cold start, or storage stopped): the backlog's size stands for its seconds, one a result, so the
    # figure still grows with it rather than reading as infinite.
    yield fm.gauge("fluxhook_store_backlog_seconds", "Seconds of storing waiting: results BFL finished and fluxhook has "
                                                     "not stored, at the rate stored over the last minute (all "
                                                     "workers). Scale worker processes on it.",
                   {(svc.storage.location,): seconds if seconds != float("inf") else float(judged.backlog.waiting)},
                   ("store",))
    yield fm.gauge("fluxhook_store_backlog", "Results BFL finished that fluxhook has not stored yet.",
                   {(svc.storage.location,): judged.backlog.waiting}, ("store",))
    # Jobs in line while storage holds sends back (batch items first: a key's single jobs in line then are few).
    held = svc.store.pacer.level_now() != NONE
    yield fm.gauge("fluxhook_sends_waiting_storage", "Jobs whose send to BFL waits for storage to catch up "
                                                     "(STORE_PACING_SHARE).", {(): sum(waiting.values()) if held else 0})


def _waiting(svc) -> dict[str, int]:
    """How many queued jobs wait for each reason, every app key's and the admin tokens' together; every reason
    named, at 0 when none waits for it, so a panel's series do not come and go."""
    keys = svc.store.app_keys.all()
    # None: the admin tokens' jobs, one owner.
    jobs = waits.of_keys(svc, [None, *(key.id for key in keys)], {key.id: key_route(svc, key) for key in keys})
    counts = dict.fromkeys(map(str, WaitReason), 0)
    for key_jobs in jobs.values():
        for reason, n in key_jobs.by_reason.items():
            counts[reason] = counts.get(reason, 0) + n
    return counts


def _credits(svc, now: float):
    """Each account's balance as a worker last read it, and today's spend against BFL_DAILY_CREDIT_LIMIT."""
    balances = {name: b for name, b in balance.kept(svc).items() if b is not None}
    # An account whose balance no worker read lately has no series: absent() tells it apart from a zero balance.
    yield fm.gauge("fluxhook_bfl_credits", "Each BFL account's credits, as GET /v1/credits last said (a worker "
                                           "asks every BFL_CREDITS_REFRESH_SECONDS).",
                   {(name,): b.credits for name, b in balances.items()}, ("account",))
    yield fm.gauge("fluxhook_bfl_credits_read_timestamp_seconds", "When each BFL account's credits were read from it "
                                                                  "(Unix time).",
                   {(name,): round(b.at, 3) for name, b in balances.items()}, ("account",))
    spent = reports.spent_today(svc, now)
    yield fm.gauge("fluxhook_credits_spent_today", "Credits spent this UTC day, as the daily limit counts them.",
                   {(): accounting.from_micro(spent)})
    if svc.config.bfl_daily_credit_limit is not None:
        yield fm.gauge("fluxhook_daily_credit_limit", "BFL_DAILY_CREDIT_LIMIT: credits fluxhook may spend per UTC day.",
                       {(): svc.config.bfl_daily_credit_limit})
