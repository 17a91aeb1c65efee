"""What an app key's limits refuse for certain before a request's body is read: its counters, read in one round trip
(``store/key_counters.py``), against what the request asks for as its head tells it (a job, a track, a batch).

A refusal here is one the request would meet anyway after its body: each check is the one its view makes later (the
same figure against the same limit), and it counts nothing (the count stays where the request is accepted). A request
whose ``Idempotency-Key`` has a record is not refused for counters: its first answer is replayed, whatever they say now.
A new limit on counters is one more entry of ``CHECKS`` (and its counter read in ``lua/key_counters.lua``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable

from fluxhook.core.errors import BudgetExceeded, FluxhookError, RateLimited
from fluxhook.credits import accounting
from fluxhook.credits.budget import seconds_until_next_day
from fluxhook.lifecycle.steps import key_limits
from fluxhook.store.app_keys import RATE_WINDOW, AppKey
from fluxhook.store.key_counters import Counters
from fluxhook.store.owners import owner_of
from fluxhook.store.slots import queue_full

if TYPE_CHECKING:
    from fluxhook.services import Services


class Asks(Enum):
    """What a request asks for, as its method and path tell it."""

    JOB = "job"  # one new job (POST /v1/jobs, BFL's POST /v1/{model})
    TRACK = "track"  # a job that follows a task sent elsewhere (POST /v1/jobs/track)
    BATCH = "batch"  # a batch of one item or more (POST /v1/batches)


@dataclass(frozen=True)
class Check:
    """One limit judged on counters: the requests it refuses, and its refusal (None: it lets the request go on)."""

    asks: frozenset[Asks]
    refuses: Callable[[AppKey, Counters, float], FluxhookError | None]


def rate_limited(key: AppKey, counters: Counters, now: float) -> RateLimited | None:
    """Its ``requests_per_minute`` admitted within the last minute already: a submission or track now is refused."""
    limit = key.requests_per_minute
    if limit is None or counters.requests_in_window < limit:
        return None
    oldest = counters.oldest_request if counters.oldest_request is not None else now
    wait = min(RATE_WINDOW, max(0.001, oldest + RATE_WINDOW - now))
    return RateLimited(f"this app key may submit or track {limit} jobs a minute; retry in {wait:.1f} s",
                       retry_after=wait)


def budget_spent(key: AppKey, counters: Counters, now: float) -> BudgetExceeded | None:
    """Its ``daily_credits`` spent today: nothing is left for a new job (a reservation takes only what is left)."""
    if key.daily_credits is None or counters.spent_today < accounting.to_micro(key.daily_credits):
        return None
    hours, rest = divmod(int(seconds_until_next_day(now)), 3600)
    return BudgetExceeded(f"this app key's credits for today are spent: {accounting.from_micro(counters.spent_today):g}"
                          f" of its daily_credits {key.daily_credits:g}; its new submissions are refused until 00:00 "
                          f"UTC (in {hours} h {rest // 60} min)")


def queue_at_limit(key: AppKey, counters: Counters, now: float) -> FluxhookError | None:
    """Its queued jobs and the room its batches being made hold at its queue limit: no job, track or batch item more
    (a batch holds at least one)."""
    if counters.queue_full is None:
        return None
    return queue_full(owner_of(key.id), 1, counters.queue_full)


def items_spent(key: AppKey, counters: Counters, now: float) -> RateLimited | None:
    """Its ``items_per_day`` made today, or its ``items_per_minute`` bucket without room for one item: no job, track or
    batch item more (a request makes one at least). The figures ``key_limits.take_request`` counts against."""
    per_minute = key.items_per_minute or counters.items_defaults[0]
    per_day = key.items_per_day or counters.items_defaults[1]
    if per_day and counters.items_today >= per_day:
        wait = seconds_until_next_day(now)
        return RateLimited(f"this app key may create {per_day:,} jobs and batch items a UTC day (items_per_day); "
                           f"retry after the day ends, in {wait:.0f} s", retry_after=wait)
    if not per_minute:
        return None
    interval = 60.0 / per_minute
    wait = counters.items_full_at + interval - now - key_limits.items_burst(per_minute) * interval
    if wait <= 0:
        return None
    return RateLimited(f"this app key may create {per_minute:,} jobs and batch items a minute (items_per_minute); "
                       f"retry in {wait:.1f} s", retry_after=wait)


# In the order the views meet them (a submission's rate and items, its budget, its place in line).
CHECKS: tuple[Check, ...] = (
    Check(frozenset({Asks.JOB, Asks.TRACK, Asks.BATCH}), items_spent),
    Check(frozenset({Asks.JOB, Asks.TRACK, Asks.BATCH}), rate_limited),
    Check(frozenset({Asks.JOB, Asks.BATCH}), budget_spent),
    Check(frozenset({Asks.JOB, Asks.TRACK, Asks.BATCH}), queue_at_limit),
)


def refusal(asks: Asks, key: AppKey, counters: Counters, now: float,
            checks: tuple[Check, ...] = CHECKS) -> FluxhookError | None:
    """The first of ``checks`` that refuses a request asking ``asks`` of ``key`` with ``counters``; None if none
    does, or the request's Idempotency-Key has a record."""
    if counters.replayed:
        return None
    for check in checks:
        if asks in check.asks and (refused := check.refuses(key, counters, now)) is not None:
            return refused
    return None


def read_counters(svc: "Services", key_id: str, idempotency: str | None, now: float) -> Counters:
    """App key ``key_id``'s record and counters, in one round trip; ``idempotency``: the record key of the request's
    Idempotency-Key, if it sent one."""
    spend = (accounting.utc_day(now), accounting.spent_field(key_id))
    return svc.store.key_counters.read(key_id, now, svc.config.max_queued_per_key, spend, idempotency,
                                       (svc.config.items_per_minute, svc.config.items_per_day))
