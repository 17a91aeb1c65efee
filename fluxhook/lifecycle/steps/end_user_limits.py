"""What an app key lets each of its end users do: its block of the day, its requests a minute and its queued jobs,
checked and taken in one step in Redis for each new job that names one (``lua/end_user_take.lua``); its daily credits
are one more limit of the budget's (``credits.budget``).

Each refusal is the key's own answer for that limit, naming the end user: nothing is created, nothing sent, and the
key's other end users go on.

A block also stops its end user's jobs not yet sent to BFL (docs/end-users.md, "Blocking"): each still ``queued``
ends ``canceled`` with the error ``end_user_blocked`` as any cancel does (never sent, nothing charged), while a job BFL
already has goes on (it is paid for whatever happens) and the key's other end users' jobs are untouched. Two ways, so
that none is missed: the block ends up to ``ENDS_AT_ONCE`` of the end user's jobs waiting in line or aside at once (an
admin's in its request, a moderation block in the step that counted the moderation reaching the limit); and every
sender looks at the job's end user under its submit lock before it sends (``ending_if_blocked``), which ends any
other (one that held a slot meanwhile, one made since, those past ``ENDS_AT_ONCE``) as its turn comes.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core.batch_items import MAX_END_USERS
from fluxhook.core.end_users import BLOCKED_ENDINGS, BlockReason, EndUserLimits, named
from fluxhook.core.errors import EndUserBlocked, FluxhookError, InvalidRequest, QueueFull, RateLimited
from fluxhook.core.job import Ending, Job
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits import accounting
from fluxhook.credits.budget import seconds_until_next_day
from fluxhook.lifecycle.steps import ending, waits
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.app_keys import AppKey
from fluxhook.store.effects import WakeEndUserWaiting
from fluxhook.store.end_users import RATE_WINDOW, BatchAsk, BatchTaken, EndUserRecord, Taken, Verdict
from fluxhook.store.jobs import Lock

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.end_users")

# How soon a refused end user's full queue is worth asking again about.
QUEUE_RETRY = 5.0
# How long a job waiting for its end user's max_active sleeps at most: the end of any of its end user's jobs (its
# ``WakeEndUserWaiting`` effect), a place given back and a raised limit each wake it at once, so this is only what a
# wake lost with a failed-over Redis costs.
ACTIVE_RECHECK = 600.0
# Most jobs a block ends in the step that blocks, a few Redis round trips each; the rest end as their turn comes.
ENDS_AT_ONCE = 500


@dataclass(frozen=True)
class TakenEndUser:
    """One new job counted against its end user's limits, given back if the job is refused after all."""

    key_id: str
    end_user: str
    job_id: str
    # Its request's member in its minute's requests; None: nothing was taken in Redis for it.
    member: str | None
    # Its limits, as its job keeps those its sends are held to (its daily credits, its max_active).
    limits: EndUserLimits


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
    defaults = key.end_user_limits or EndUserLimits()
    if not (key.end_user_records or key.end_user_moderation_limit or defaults.requests_per_minute
            or defaults.max_queued):
        # Nothing its key set can refuse it here (no block, no rate, no queue of its own): no Redis step for it.
        return TakenEndUser(key.id, end_user, job_id, None, defaults)
    member = secrets.token_hex(16)
    taken = _take(svc, key, end_user, job_id, member, now)
    if taken.verdict is Verdict.QUEUE_FULL and svc.store.end_users.prune(key.id, end_user, taken.queued):
        taken = _take(svc, key, end_user, job_id, member, now)
    if taken.verdict is not Verdict.TAKEN:
        raise _refusal(svc, key, end_user, taken, now)
    return TakenEndUser(key.id, end_user, job_id, member, limits_of(key, taken.record))


def for_batch(svc: "Services", caller: Caller, end_users: set[str], now: float) -> dict[str, EndUserLimits]:
    """The limits of each of a batch's ``end_users`` (its items' sends stay within their daily credits and max_active,
    as a job's do; their requests_per_minute and max_queued are ``take_batch``'s), or ``EndUserBlocked`` (403) when one
    is blocked today, naming it: the batch is refused whole. Nothing for an admin token's batch."""
    key = caller.key
    if key is None or not end_users:
        return {}
    if len(end_users) > MAX_END_USERS:
        raise InvalidRequest(f"a batch's items may name at most {MAX_END_USERS:,} end users; split it")
    day, names = accounting.utc_day(now), sorted(end_users)
    credits: dict[str, EndUserLimits] = {}
    for end_user, (record, moderated) in zip(names, svc.store.end_users.standing(key.id, names, day), strict=True):
        why = blocked_why(key, record, moderated, day)
        if why is not None:
            raise _blocked(svc, key, end_user, why, moderated, now)
        credits[end_user] = limits_of(key, record)
    return credits


@dataclass(frozen=True)
class TakenBatch:
    """A batch's items counted by ``take_batch`` (``asks``: each end user limited, with the job ids its items are to have
    under a max_queued), given back if the batch is refused after all."""

    key_id: str
    prefix: str
    asks: tuple[BatchAsk, ...]


def take_batch(svc: "Services", caller: Caller, items: Mapping[str, Sequence[str]],
               limits: Mapping[str, EndUserLimits], now: float) -> TakenBatch | None:
    """Count a batch's items (``items``: each end user's items' job ids, in their order; ``limits``: each one's, from
    ``for_batch``) against
    their end users' ``requests_per_minute`` and ``max_queued``, each item one request and one queued job as a job of
    its own would be, all or none in one step (``lua/end_user_take_batch.lua``); or raise the refusal a job of the first
    end user past one meets, naming it (429 ``rate_limited`` or ``queue_full``): the batch is refused whole, nothing
    counted. None when none of its end users is limited by either (no Redis step), or for an admin token's batch."""
    if caller.key is None:
        return None
    asks = []
    for end_user, job_ids in sorted(items.items()):
        own = limits.get(end_user) or EndUserLimits()
        rate, queue, count = own.requests_per_minute or 0, own.max_queued or 0, len(job_ids)
        if rate or queue:
            ids = tuple(job_ids) if queue and count <= queue else ()
            asks.append(BatchAsk(end_user, rate, queue, count, ids))
    if not asks:
        return None
    store, prefix = svc.store.end_users, secrets.token_hex(16)
    taken = store.take_batch(caller.key.id, asks, prefix=prefix, now=now)
    if taken.verdict is Verdict.QUEUE_FULL and taken.refused is not None \
            and store.prune(caller.key.id, taken.refused.end_user, taken.queued):
        taken = store.take_batch(caller.key.id, asks, prefix=prefix, now=now)
    if taken.verdict is not Verdict.TAKEN:
        metrics.count(svc, "fluxhook_end_user_refusals", key=caller.key.name, reason=_REASONS[taken.verdict])
        raise _batch_refusal(taken)
    return TakenBatch(caller.key.id, prefix, tuple(asks))


def give_back_batch(svc: "Services", taken: TakenBatch | None) -> None:
    """A counted batch was refused after all: its items count nothing for their end users."""
    if taken is not None:
        svc.store.end_users.give_back_batch(taken.key_id, list(taken.asks), prefix=taken.prefix)


def _batch_refusal(taken: BatchTaken) -> FluxhookError:
    ask = taken.refused
    assert ask is not None  # a refusal names its end user
    who = named(ask.end_user)
    if taken.verdict is Verdict.RATE_LIMITED:
        rate = ask.requests_per_minute
        said = (f"this batch holds {ask.items:,} items for {who}, who may submit {rate} jobs a minute with this app "
                f"key (requests_per_minute of its end user limits; each item counts one): nothing was created; ")
        if taken.figure == 0:
            return RateLimited(f"{said}send at most {rate} of its items a minute", retry_after=RATE_WINDOW)
        wait = taken.figure / 1000
        return RateLimited(f"{said}retry in {wait:.1f} s", retry_after=wait)
    queued = len(taken.queued)
    return QueueFull(f"this batch holds {ask.items:,} items for {who}, who holds {queued:,} jobs queued for BFL "
                     f"with this app key, and may hold {ask.max_queued:,} (max_queued of its end user limits; each "
                     f"item counts one): nothing was created; send it again once some of them have gone to BFL "
                     f"(Retry-After), or split it", queued=queued, limit=ask.max_queued, retry_after=QUEUE_RETRY)


def _blocked_today(svc: "Services", key: AppKey, end_user: str, now: float) -> tuple[BlockReason, int] | None:
    """Why ``end_user`` of ``key`` is blocked today, with its jobs BFL moderated today, read from Redis (one round trip);
    None when it is not, or when its key blocks none (nothing set by hand, no moderation limit: no Redis step)."""
    if not (key.end_user_records or key.end_user_moderation_limit):
        return None
    day = accounting.utc_day(now)
    [(record, moderated)] = svc.store.end_users.standing(key.id, [end_user], day)
    why = blocked_why(key, record, moderated, day)
    return None if why is None else (why, moderated)


def blocked_refusal(svc: "Services", key: AppKey, end_user: str, now: float) -> EndUserBlocked | None:
    """The refusal (403 ``end_user_blocked``, naming why) of a request of ``end_user`` blocked today; None when not."""
    blocked = _blocked_today(svc, key, end_user, now)
    return None if blocked is None else _blocked(svc, key, end_user, *blocked, now)


def blocked_why(key: AppKey, record: EndUserRecord, moderated: int, day: str) -> BlockReason | None:
    """Why the end user is blocked on ``day`` (the rule of ``lua/end_user_take.lua``), None when it is not."""
    if record.blocked == day:
        return BlockReason.MANUAL
    lifted = record.lifted[1] if record.lifted and record.lifted[0] == day else 0
    limit = key.end_user_moderation_limit
    if limit is not None and moderated - lifted >= limit:
        return BlockReason.MODERATED
    return None


def ending_if_blocked(svc: "Services", key: AppKey | None, job: Job, now: float) -> Ending | None:
    """How ``job`` (``queued``, of ``key``) ends instead of being sent when its end user is blocked today; None when
    it is not."""
    blocked = None if key is None or job.end_user is None else _blocked_today(svc, key, job.end_user, now)
    return None if blocked is None else BLOCKED_ENDINGS[blocked[0]]


def end_waiting(svc: "Services", key_id: str, end_user: str, why: BlockReason) -> int:
    """End the blocked ``end_user``'s jobs of key ``key_id`` waiting in line or aside (up to ``ENDS_AT_ONCE``), each
    under its submit lock: one a sender is sending goes on as the send decides. How many ended."""
    blocked = BLOCKED_ENDINGS[why]
    ids = svc.slots.end_user_waiting(key_id, end_user)[:ENDS_AT_ONCE]
    ended = 0
    for job in svc.jobs.get_many(ids):
        if job is None or job.key_id != key_id or job.end_user != end_user:
            continue  # gone, or another's whose member's tag is alike
        outcome = ending.end(svc, job.id, lambda status: blocked if status == st.QUEUED else None, wait=0)
        ended += outcome == ending.Ended.ENDED
    if ended:
        log.info("blocked end user's queued jobs ended", extra={"key_id": key_id, "ended": ended,
                                                              "reason": why.value})
    return ended


def after_moderated(svc: "Services", job: Job) -> None:
    """``job`` (of an end user) just ended ``moderated``: if that took its end user to its key's moderation limit,
    its jobs waiting end now (``end_waiting``)."""
    if job.end_user is None or job.key_id is None:
        return
    key = svc.store.app_keys.get(job.key_id)
    if key is None or not key.end_user_moderation_limit:
        return
    blocked = _blocked_today(svc, key, job.end_user, time.time())
    if blocked is not None and blocked[0] is BlockReason.MODERATED:
        end_waiting(svc, key.id, job.end_user, BlockReason.MODERATED)


def take_active(svc: "Services", job: Job) -> bool:
    """Whether the job may be sent now under its end user's ``max_active`` (its place taken, given back by
    ``give_back_active`` if it is not sent after all); always for a job without that limit."""
    if job.end_user_max_active is None or job.key_id is None or job.end_user is None:
        return True
    return svc.store.end_users.take_active(job.key_id, job.end_user, job.id, job.end_user_max_active, time.time())


def give_back_active(svc: "Services", job: Job) -> None:
    """The job was not sent after all: its place at BFL comes back, and its end user's jobs waiting for one are
    looked at now."""
    if job.end_user_max_active is not None and job.key_id is not None and job.end_user is not None:
        svc.store.end_users.give_back_active(job.key_id, job.end_user, job.id)
        svc.store.effects.apply([WakeEndUserWaiting(job.key_id, job.end_user)])


def still_waits_for_active(svc: "Services", job: Job) -> bool:
    """Whether a job waiting aside for its end user's ``max_active`` must wait on (a look: nothing taken)."""
    if job.waiting_reason != WaitReason.END_USER_MAX_ACTIVE or job.end_user_max_active is None:
        return False
    assert job.key_id is not None and job.end_user is not None  # only such a job waits for it
    return not svc.store.end_users.has_active_room(job.key_id, job.end_user, job.end_user_max_active)


def wait_for_active(svc: "Services", job: Job, lock: Lock | None = None) -> str:
    """The job waits aside, its slot (and its send's ``lock``) given back, while its end user has ``max_active`` jobs at
    BFL: asleep until one of them leaves BFL (``ACTIVE_RECHECK`` s at most), its key's other end users going on
    meanwhile; ``queued``."""
    waits.begin(svc, job, Waiting(WaitReason.END_USER_MAX_ACTIVE))
    svc.slots.requeue(job, wait=ACTIVE_RECHECK, unlock=lock)
    return st.QUEUED


def give_back(svc: "Services", taken: TakenEndUser | None) -> None:
    """A counted job was refused after all (its key's limits, the budget, BFL): it counts nothing for its end user."""
    if taken is not None and taken.member is not None:
        svc.store.end_users.give_back(taken.key_id, taken.end_user, job_id=taken.job_id, member=taken.member)


def _take(svc: "Services", key: AppKey, end_user: str, job_id: str, member: str, now: float) -> Taken:
    return svc.store.end_users.take(key.id, end_user, job_id=job_id, member=member, day=accounting.utc_day(now),
                                    now=now, moderation_limit=key.end_user_moderation_limit,
                                    defaults=key.end_user_limits or EndUserLimits())


_REASONS = {Verdict.RATE_LIMITED: "rate_limited", Verdict.QUEUE_FULL: "queue_full"}
_BLOCKED_BY = {Verdict.BLOCKED: BlockReason.MANUAL, Verdict.MODERATED: BlockReason.MODERATED}


def _blocked(svc: "Services", key: AppKey, end_user: str, why: BlockReason, moderated: int,
             now: float) -> EndUserBlocked:
    """The refusal, counted, of a request of ``end_user``, blocked today (``moderated``: its jobs BFL moderated)."""
    metrics.count(svc, "fluxhook_end_user_refusals", key=key.name, reason=why.value)
    who = named(end_user)
    hours, rest = divmod(int(seconds_until_next_day(now)), 3600)
    until = f"its new jobs are refused until it is unblocked or the UTC day ends (in {hours} h {rest // 60} min)"
    if why is BlockReason.MANUAL:
        return EndUserBlocked(f"{who} is blocked for today by an admin of this app key: {until}")
    return EndUserBlocked(f"{who} is blocked for today: BFL moderated {moderated} of its jobs today, this app key's "
                          f"end_user_moderation_limit of {key.end_user_moderation_limit}; {until}")


def _refusal(svc: "Services", key: AppKey, end_user: str, taken: Taken, now: float) -> FluxhookError:
    """The refusal, counted, of a request of ``end_user`` that ``taken`` did not count."""
    if taken.verdict in _BLOCKED_BY:
        return _blocked(svc, key, end_user, _BLOCKED_BY[taken.verdict], taken.figure, now)
    metrics.count(svc, "fluxhook_end_user_refusals", key=key.name, reason=_REASONS[taken.verdict])
    who = named(end_user)
    limits = limits_of(key, taken.record)
    if taken.verdict is Verdict.RATE_LIMITED:
        wait = taken.figure / 1000
        return RateLimited(f"{who} may submit {limits.requests_per_minute} jobs a minute with this app key "
                           f"(requests_per_minute of its end user limits); retry in {wait:.1f} s", retry_after=wait)
    return QueueFull(f"{who} holds {taken.figure:,} jobs queued for BFL, its limit with this app key (max_queued of "
                     f"its end user limits): nothing was created; send it again once some of them have gone to BFL "
                     f"(Retry-After)", queued=taken.figure, limit=taken.figure, retry_after=QUEUE_RETRY)
