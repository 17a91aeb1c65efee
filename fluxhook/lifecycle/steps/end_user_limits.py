"""What an app key lets each of its end users do: its block of the day, its requests a minute and its queued jobs,
checked and taken in one step in Redis for each new job that names one (``lua/end_user_take.lua``); its daily credits
are one more limit of the budget's (``credits.budget``).

Each refusal is the key's own answer for that limit, naming the end user: nothing is created, nothing sent, and the
key's other end users go on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fluxhook import metrics
from fluxhook.core.end_users import BlockReason, EndUserLimits, named
from fluxhook.core.errors import EndUserBlocked, FluxhookError, QueueFull, RateLimited
from fluxhook.credits import accounting
from fluxhook.credits.budget import seconds_until_next_day
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.app_keys import AppKey
from fluxhook.store.end_users import EndUserRecord, Taken, Verdict

if TYPE_CHECKING:
    from fluxhook.services import Services

# How soon a refused end user's full queue is worth asking again about.
QUEUE_RETRY = 5.0


@dataclass(frozen=True)
class TakenEndUser:
    """One new job counted against its end user's limits, given back if the job is refused after all."""

    key_id: str
    end_user: str
    job_id: str
    member: str
    # Its daily credits, as the budget asks them of its submission (None: none).
    daily_credits: float | None


def limits_of(key: AppKey, record: EndUserRecord) -> EndUserLimits:
    """What one end user of ``key`` may do: the key's ``end_user_limits``, with the end user's own in their place."""
    return (key.end_user_limits or EndUserLimits()).over(record.limits)


def take(svc: "Services", caller: Caller, end_user: str | None, job_id: str, now: float) -> TakenEndUser | None:
    """Count the new job ``job_id`` of ``end_user`` against what its key set for it, or raise the key's own refusal
    for that limit naming the end user (nothing counted): ``EndUserBlocked`` (403), ``RateLimited`` or ``QueueFull``
    (429). None for a request naming no end user, or made with an admin token (its end users have no limits)."""
    key = caller.key
    if key is None or end_user is None:
        return None
    member = secrets.token_hex(16)
    taken = _take(svc, key, end_user, job_id, member, now)
    if taken.verdict is Verdict.QUEUE_FULL and svc.store.end_users.prune(key.id, end_user, taken.queued):
        taken = _take(svc, key, end_user, job_id, member, now)
    if taken.verdict is not Verdict.TAKEN:
        refusal = _refusal(key, end_user, taken, now)
        metrics.count(svc, "fluxhook_end_user_refusals", key=key.name, reason=_REASONS[taken.verdict])
        raise refusal
    return TakenEndUser(key.id, end_user, job_id, member, limits_of(key, taken.record).daily_credits)


def give_back(svc: "Services", taken: TakenEndUser | None) -> None:
    """A counted job was refused after all (its key's limits, the budget, BFL): it counts nothing for its end user."""
    if taken is not None:
        svc.store.end_users.give_back(taken.key_id, taken.end_user, job_id=taken.job_id, member=taken.member)


def _take(svc: "Services", key: AppKey, end_user: str, job_id: str, member: str, now: float) -> Taken:
    return svc.store.end_users.take(key.id, end_user, job_id=job_id, member=member, day=accounting.utc_day(now),
                                    now=now, moderation_limit=key.end_user_moderation_limit,
                                    defaults=key.end_user_limits or EndUserLimits())


_REASONS = {Verdict.BLOCKED: BlockReason.MANUAL.value, Verdict.MODERATED: BlockReason.MODERATED.value,
            Verdict.RATE_LIMITED: "rate_limited", Verdict.QUEUE_FULL: "queue_full"}


def _refusal(key: AppKey, end_user: str, taken: Taken, now: float) -> FluxhookError:
    who = named(end_user)
    until = seconds_until_next_day(now)
    hours, rest = divmod(int(until), 3600)
    if taken.verdict is Verdict.BLOCKED:
        return EndUserBlocked(f"{who} is blocked for today by an admin of this app key: its new jobs are refused until "
                              f"it is unblocked or the UTC day ends (in {hours} h {rest // 60} min)")
    if taken.verdict is Verdict.MODERATED:
        return EndUserBlocked(f"{who} is blocked for today: BFL moderated {taken.figure} of its jobs today, this app "
                              f"key's end_user_moderation_limit of {key.end_user_moderation_limit}; its new jobs are "
                              f"refused until it is unblocked or the UTC day ends (in {hours} h {rest // 60} min)")
    limits = limits_of(key, taken.record)
    if taken.verdict is Verdict.RATE_LIMITED:
        wait = taken.figure / 1000
        return RateLimited(f"{who} may submit {limits.requests_per_minute} jobs a minute with this app key "
                           f"(requests_per_minute of its end user limits); retry in {wait:.1f} s", retry_after=wait)
    return QueueFull(f"{who} holds {taken.figure:,} jobs queued for BFL, its limit with this app key (max_queued of "
                     f"its end user limits): nothing was created; send it again once some of them have gone to BFL "
                     f"(Retry-After)", queued=taken.figure, limit=taken.figure, retry_after=QUEUE_RETRY)
