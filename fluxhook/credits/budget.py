"""The daily credit budget, ``BFL_DAILY_CREDIT_LIMIT``: its rules, and the submission's use of them.

BFL tells a task's price only in its answer to the submission, so the check before submitting
reserves something: a submission is admitted while the UTC day's spend plus what the submissions
under way hold reserved stays below the limit, and it reserves an estimate of its own
price (the model's average price that day, else the day before, else ``DEFAULT_ESTIMATE``). BFL's
answer settles it: the reservation goes and the real price is spent, in the one atomic step that
records the submission; a submission that fails releases it. The check and the reservation are one
Lua script (``store/lua/budget_reserve.lua``), so two processes never both pass the last credit.

``POST /v1/jobs`` reserves before it creates the job, so a refused request creates nothing (and one
that fails after it gives the reservation back), and an accepted one keeps its reservation while it
waits in line for a BFL slot; it goes then while the day's spend alone is below the limit. A queued
job refused waits on its own, tried again every ``RECHECK`` seconds, until the next UTC day or its
hour is up. A reservation lives ``RESERVATION_LEASE`` seconds, so one
left by a process that died frees itself.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from fluxhook.credits import usage
from fluxhook.errors import BudgetExceeded
from fluxhook.limits import CALL_BOUND
from fluxhook.schedule import POLL_DEADLINE
from fluxhook.store.usage import Reservation

if TYPE_CHECKING:
    from fluxhook.services import Services

# What a submission reserves when its model has no price yet today or yesterday (credits).
DEFAULT_ESTIMATE = 1.0
# As long as a job may wait in line for a slot, and its submission take.
RESERVATION_LEASE = POLL_DEADLINE + CALL_BOUND
# A queued job refused for the budget tries again this often, so a raised limit takes effect soon.
RECHECK = 60.0


def seconds_until_next_day(now: float) -> float:
    """Seconds from ``now`` to the next midnight UTC."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(0.0, midnight.timestamp() - now)


def recheck_in(now: float) -> float:
    """How long a queued job refused for the budget waits before it is tried again."""
    return max(1.0, min(RECHECK, seconds_until_next_day(now)))


def refusal(spent: int, reserved: int, limit: float, now: float) -> str:
    """The message of a ``budget_exceeded`` answer."""
    hours, rest = divmod(int(seconds_until_next_day(now)), 3600)
    held = f", {usage.from_micro(reserved):g} more reserved by submissions under way" if reserved else ""
    return (f"today's credits are spent: {usage.from_micro(spent):g} of BFL_DAILY_CREDIT_LIMIT {limit:g}{held}; "
            f"new submissions are refused until 00:00 UTC (in {hours} h {rest // 60} min)")


def summary(spent: int, reserved: int, limit: float | None, refused: bool = False) -> tuple[bool, str]:
    """Today's spend against the limit in words, and whether new submissions are refused now (``refused``,
    as ``standing`` found it)."""
    held = f" ({usage.from_micro(reserved):,g} more reserved by submissions under way)" if reserved else ""
    if limit is None:
        return False, f"spent today {usage.from_micro(spent):,g} credits{held}; no BFL_DAILY_CREDIT_LIMIT"
    share = usage.from_micro(spent) / limit
    text = (f"spent today {usage.from_micro(spent):,g} of BFL_DAILY_CREDIT_LIMIT {limit:,g} credits "
            f"({share:.0%}){held}")
    return refused, text + ("; new submissions are refused until 00:00 UTC" if refused else "")


def reserve(svc: "Services", job_id: str, model: str, now: float | None = None, *,
            dry_run: bool = False) -> Reservation | None:
    """Admit the job's submission against today's limit and reserve its estimated price.

    None when no limit is set (nothing is reserved); else the store's answer, admitted or not.
    ``dry_run``: only say whether it would be admitted, reserving nothing.
    """
    limit = svc.config.bfl_daily_credit_limit
    if limit is None:
        return None
    now = time.time() if now is None else now
    return svc.store.usage.reserve(
        job_id, day=usage.utc_day(now), previous_day=usage.utc_day(now - 86400), limit=usage.to_micro(limit),
        estimate=usage.to_micro(DEFAULT_ESTIMATE), spent_field=usage.SPENT,
        credits_field=usage.field(model, "credits"), jobs_field=usage.field(model, "jobs"), now=now,
        lease=RESERVATION_LEASE, dry_run=dry_run)


def standing(svc: "Services", now: float | None = None) -> Reservation | None:
    """Whether a new submission would be admitted now, with the day's spend and what others hold reserved:
    the reservation's own rule, reserving nothing. None when no limit is set."""
    return reserve(svc, "", "", now, dry_run=True)


def admit(svc: "Services", job_id: str, model: str, now: float | None = None) -> int:
    """Reserve the job's estimated price, or raise ``BudgetExceeded``; returns the micro-credits reserved."""
    now = time.time() if now is None else now
    reservation = reserve(svc, job_id, model, now)
    if reservation is None:
        return 0
    if not reservation.admitted:
        raise BudgetExceeded(refusal(reservation.spent, reservation.reserved, svc.config.bfl_daily_credit_limit, now))
    return reservation.amount
