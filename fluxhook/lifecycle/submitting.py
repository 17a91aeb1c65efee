"""Sending a job's task to BFL: with its own callback URL and secret, once, within its slot."""

from __future__ import annotations

import logging
import secrets
import time

from redis.exceptions import RedisError

from fluxhook import metrics
from fluxhook.core import signing
from fluxhook.core import transitions as st
from fluxhook.core.accounts import DEFAULT_ACCOUNT, Account
from fluxhook.core.backoff import backoff_delay
from fluxhook.core.bfl_limits import CALL_BOUND
from fluxhook.core.catalog import first_poll_at
from fluxhook.core.errors import (
    BFLAccountDown,
    BFLError,
    BFLRateLimited,
    BFLSubmissionUncertain,
    BudgetExceeded,
    FluxhookError,
    InsufficientCredits,
    NotReplicated,
    RetryableError,
)
from fluxhook.core.job import Job
from fluxhook.core.outcomes import SKIPPED
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits import accounting, budget, price_bounds
from fluxhook.credits.price_bounds import Size
from fluxhook.lifecycle import revoking
from fluxhook.lifecycle.steps import cooling, durable, reconciling, schedule, task_inputs, timeline, waits
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_callback
from fluxhook.services import Services
from fluxhook.store.app_keys import AppKey
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.usage import Reservation

log = logging.getLogger("fluxhook.submitting")

# Outlasts one submission to BFL; one killed with its worker is started again soon after.
SUBMIT_LOCK_SECONDS = CALL_BOUND
# While BFL keeps answering 429 or cannot be reached, the pool waits at most this long between tries.
MAX_PAUSE = 60.0


def submission_lock_left(svc: Services, job_id: str) -> float:
    """Seconds until the lock of a submission of this job under way in some process expires; 0 if none is."""
    return svc.store.locks.seconds_left(svc.store.keys.submit_lock(job_id))


def check_budget(svc: Services, job: Job, key: AppKey | None = None) -> None:
    """Before a new job is created: ``BudgetExceeded`` (402) when today's ``BFL_DAILY_CREDIT_LIMIT`` or its app
    key's ``daily_credits`` leave nothing, so that nothing is created. Nothing is reserved until it is sent."""
    try:
        budget.admission(svc, job.id, job.model or "", job.input or {}, key=key)
    except BudgetExceeded:
        metrics.count(svc, "fluxhook_submissions", outcome="budget_exceeded")
        raise


def wait_out_of_line(svc: Services, job: Job) -> str | None:
    """A ``queued`` job waiting out of line has come due: None when it goes back in line, once the budget
    would let it go (it reserves when it is sent; a job waiting to go alone keeps holding later jobs back
    by its record of waiting meanwhile); while it must still wait (the day's credits, the account's or its app
    key's, are spent; or it must go alone and others are live), it stays out of line, tried again later
    (``queued``), or fails once its hour is up (``failed``), as its submission would. Back in line, a job the
    budget refuses would take a turn ahead of other apps' jobs that can go, and give it back, every time it
    came due."""
    key = None
    if job.key_id:
        key = svc.store.app_keys.get(job.key_id)
        if key is None or key.revoked_at is not None:
            return None  # its submission fails it
    request = _request_or_size(svc, job, None)
    would = budget.reserve(svc, job.id, job.model or "", request, key=key, dry_run=True)
    if would is None or would.admitted:
        return None
    # Still waiting: asked again for real, which renews its record of waiting to go alone.
    reservation = budget.reserve(svc, job.id, job.model or "", request, key=key)
    if reservation is None or reservation.admitted:
        svc.store.usage.release(job.id, job.key_id)  # the others settled meanwhile: it reserves when it is sent
        return None
    return _over_budget(svc, job, reservation, key)


def _request_or_size(svc: Services, job: Job, task_input: dict | None) -> dict | Size:
    """What the budget measures the job's request by: its input, or the size its record keeps of one that
    waits in storage (read from storage only when the record keeps neither)."""
    request = task_input if task_input is not None else (job.input or None)
    if request is not None:
        return request
    size = Size.decode(job.input_size)
    return size if size is not None else task_inputs.load(svc, job.id, job.input)


def submit(svc: Services, job: Job, task_input: dict | None = None, primary: str | None = None,
           claim: str | None = None, *, in_request: bool = False) -> str:
    """Send a ``queued`` job (as recorded) that holds a slot to BFL, at most once at a time, reserving its price
    against today's limits first; ``task_input`` is its input when the caller has it in hand, so a large one is
    not read back from storage; ``primary`` the Redis primary as known before ``job`` was read, when replicas
    are required (``durable``); ``claim`` the value its submit lock is taken with (``new_claim``), for a caller
    that may have to give the lock back.

    Returns ``submitted``; ``queued`` when BFL answered 429 (the job is back in line and the
    pool pauses for Retry-After) or today's credits are spent (only this job waits); ``failed`` when
    they were spent for the job's whole hour; ``skipped`` if another process is submitting it.
    Other BFL errors propagate. ``in_request``: the job is being created by the request that sends it, so a
    refusal of the budget raises ``BudgetExceeded`` (the request answers 402 and creates nothing) instead.
    """
    lock, claim = svc.store.keys.submit_lock(job.id), claim or new_claim()
    if not svc.store.locks.take(lock, claim, SUBMIT_LOCK_SECONDS):
        return SKIPPED
    try:
        return _submit(svc, job, task_input, primary, in_request)
    finally:
        svc.store.locks.release(lock, claim)


def new_claim() -> str:
    """A value for one submission's lock, its own: only that submission may free it."""
    return secrets.token_hex(8)


def _submit(svc: Services, job: Job, task_input: dict | None, primary: str | None, in_request: bool) -> str:
    config = svc.config
    key_name, key = "", None
    if job.key_id:
        # A job of a key revoked while it waited is never sent (its revocation may have missed it in line).
        key = svc.store.app_keys.get(job.key_id)
        if key is None or key.revoked_at is not None:
            revoking.fail(svc, job)
            return st.FAILED
        key_name = key.name
    # The account whose slot the job holds sends it (a slot taken before accounts were kept: the first's).
    account = config.account(svc.slots.account_of(job.id))
    # A large input waiting in storage is read only once the budget lets its job go.
    measured = _request_or_size(svc, job, task_input)
    reservation = budget.reserve(svc, job.id, job.model or "", measured, key=key, account=account)
    if reservation is not None and not reservation.admitted:
        if budget.by_bfl_account(reservation) and reservation.spent >= accounting.to_micro(account.daily_credit_limit):
            # This account's own day is spent: it rests until tomorrow, and the job goes back in line for another.
            cooling.cool_for_the_day(svc, account)
            svc.slots.requeue(job)
            return st.QUEUED
        if in_request and not reservation.waits and not budget.by_bfl_account(reservation):
            # Others took the last credits between the request's look and now: refused as at its look.
            metrics.count(svc, "fluxhook_submissions", outcome="budget_exceeded")
            raise BudgetExceeded(budget.refusal_of(svc, reservation, time.time(), key))
        return _over_budget(svc, job, reservation, key)
    model = config.catalog.get(job.model or "")
    try:
        request = measured if not isinstance(measured, Size) else task_inputs.load(svc, job.id, job.input)
        # The BFL client leaves the webhook fields out for a model whose schema refuses them; its task is then
        # polled from its submission (first_poll_at).
        body = dict(price_bounds.capped(model, request),
                    webhook_url=signing.job_webhook_url(config.public_base_url, config.secret_keys, job.id),
                    webhook_secret=signing.job_webhook_secret(config.secret_keys, job.id))
        durable.confirm_before_sending(svc, primary)
        task = svc.bfl(account.name).submit(job.model or "", body)
    except BaseException as exc:
        if reservation is not None and not isinstance(exc, BFLSubmissionUncertain):
            # Not sent: back in line or failed, the job holds nothing against anyone's limit. A submission
            # whose answer was lost keeps it until BFL says whether it has the task.
            svc.store.usage.release(job.id, job.key_id, account.name)
        if not isinstance(exc, FluxhookError):
            raise
        return _not_sent(svc, job, account, exc)
    # BFL has the task and charges for it: its record comes first, before anything else that may fail.
    now = time.time()
    # With the move: the day's usage, the budget's spend in place of the reservation, the credits metric.
    fields, effects = accounting.on_submitted(job.model or "", task["cost"], reservation.amount if reservation else 0, now,
                                         key_id=job.key_id, key_name=key_name, account=account.name)
    if reservation is not None:
        effects.append(ReleaseBudget(job.id, job.key_id, account.name))
    recorded = durable.record_durably(svc, lambda: svc.jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id=task["id"], polling_url=task["polling_url"],
        bfl_status=st.BFL_PENDING, input=None, submitted_at=now, account=account.name,
        due=first_poll_at(model, now, config.callback_grace_seconds), effects=effects, **fields))
    metrics.count(svc, "fluxhook_submissions", outcome="submitted", account=account.name)
    timeline.record(svc, job.id, "submission", outcome="submitted", bfl_id=task["id"], account=account.name)
    budget.check_price(svc, job.model or "", request, task["cost"])
    # The next refusal starts its backoff afresh, and an account on probation takes tasks again.
    svc.store.cooldowns.accepted(account.name, svc.slots.pool_of(job), now)
    if not recorded:
        # BFL has the task, and charges for it, though the job is gone: its price still counts.
        metrics.record(svc, effects)
        log.warning("job gone before its submission was recorded", extra={"job_id": job.id, "bfl_id": task["id"]})
        return SKIPPED
    log.info("job submitted", extra={"job_id": job.id, "bfl_id": task["id"], "model": job.model})
    if job.input is None:
        task_inputs.drop(svc, job.id)  # its record kept none: it waited in storage, and BFL has it now
    submitted = svc.jobs.get(job.id)
    try:
        if submitted is not None:
            apply_kept_callback(svc, submitted)  # BFL's callback may have overtaken its answer to us
    except Exception:
        # The task is at BFL and recorded: that must not read as a failed submission. The kept
        # callback stays kept (apply_kept_callback puts it back) for BFL's retry or a later look.
        log.exception("applying an early callback failed", extra={"job_id": job.id})
    return st.SUBMITTED


def _not_sent(svc: Services, job: Job, account: Account, exc: FluxhookError) -> str:
    """What becomes of a job BFL did not take: back in line (``queued``) while its account cools or BFL is full,
    awaiting BFL's word when the answer was lost; any other error propagates."""
    metrics.count(svc, "fluxhook_submissions", outcome=exc.code, account=account.name)
    timeline.record(svc, job.id, "submission", outcome=exc.code, account=account.name)
    if svc.config.named_accounts and isinstance(exc, (BFLAccountDown, InsufficientCredits, BFLSubmissionUncertain)):
        # Several accounts (SPEC §14): this one cools for every process, and a job that never reached BFL goes
        # back in line, for another account it may use or this one's recovery.
        cooling.cool_after(svc, account, exc)
        if isinstance(exc, BFLSubmissionUncertain):
            return reconciling.await_task(svc, job, account)
        svc.slots.requeue(job)
        log.info("job queued: its BFL account cools down", extra={"job_id": job.id, "account": account.name})
        return st.QUEUED
    if isinstance(exc, BFLRateLimited) or (isinstance(exc, BFLAccountDown) and exc.out_of_capacity):
        # One account: BFL is full or out of capacity, so the job waits in line while its pool pauses.
        pause = wait_for_room(svc, job, exc.retry_after)
        log.info("job queued: BFL is at its limit", extra={"job_id": job.id, "retry_after": round(pause, 1)})
        return st.QUEUED
    raise exc


def _over_budget(svc: Services, job: Job, reservation: Reservation, key: AppKey | None) -> str:
    """A queued job whose submission the daily credit limit refuses: it waits for the next UTC day,
    tried again now and then, until its hour is up; or, when it must go alone while others'
    reservations are live, until they settle. Its record says which (``waits.begin``), before it
    leaves its slot: a job waiting aside always has its reason."""
    now = time.time()
    if (reservation.waits or budget.by_bfl_account(reservation)) and not schedule.timed_out(job.created_at, now):
        # To go alone while others' reservations are live, or its account's own limit held by submissions under
        # way: they settle within seconds.
        waits.begin(svc, job, budget.waiting_for(svc, reservation, now, key))
        svc.slots.requeue(job, wait=budget.ALONE_RECHECK)
        log.info("job queued: it goes alone once the other submissions' prices are known",
                 extra={"job_id": job.id, "retry_after": budget.ALONE_RECHECK})
        return st.QUEUED
    waiting = budget.waiting_for(svc, reservation, now, key)
    if job.waiting_reason != waiting.reason:
        # Once per refusal, not at each of the job's later looks while it waits for the next day.
        metrics.count(svc, "fluxhook_submissions", outcome="budget_exceeded")
    if schedule.timed_out(job.created_at, now):
        timeline.record(svc, job.id, "submission", outcome="budget_exceeded")
        svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                            error={"code": "timeout", "message": "today's credits (BFL_DAILY_CREDIT_LIMIT) were spent "
                                                                 "for the whole hour the job could wait"},
                            effects=[ReleaseBudget(job.id, job.key_id), *accounting.on_end(job, st.FAILED, now)])
        task_inputs.drop(svc, job.id)
        return st.FAILED
    wait = budget.recheck_in(now)
    # Only this job waits, out of line with its slot freed: the budget says nothing about BFL's room, so its
    # pool is neither paused nor struck. When it comes due, the sweep's check of a queued job puts it back in
    # line at its old place, and it is tried again.
    waits.begin(svc, job, waiting)
    svc.slots.requeue(job, wait=wait)
    log.info("job queued: today's credits are spent", extra={
        "job_id": job.id, "spent": accounting.from_micro(reservation.spent), "retry_after": round(wait, 1)})
    return st.QUEUED


def wait_for_room(svc: Services, job: Job, retry_after: float | None) -> float:
    """Put the job back in line and pause its pool at the account whose slot it held: BFL's Retry-After, or growing
    backoff if BFL keeps refusing."""
    pool = svc.slots.pool_of(job)
    strikes = svc.slots.strike(pool, svc.slots.account_of(job.id) or DEFAULT_ACCOUNT)
    pause = max(retry_after or 0.0, backoff_delay(strikes, base=1.0, cap=MAX_PAUSE))
    waits.begin(svc, job, Waiting(WaitReason.BFL_CAPACITY, time.time() + pause))
    svc.slots.requeue(job, pause)
    return pause


def take_turns(svc: Services, limit: int) -> list[str]:
    """Give up to ``limit`` free BFL slots to the jobs whose turn it is (fair share, SPEC §11): their ids, each
    to be sent at once with ``submit_queued``. The caller asks for no more than it can send now, so a slot is
    held only by a task being sent or run at BFL."""
    return svc.slots.dispatch(limit) if limit > 0 else []


def submit_queued(svc: Services, job_id: str) -> str:
    """Submit a queued job that was handed a slot; an error that will pass puts it back in line
    (and propagates, for RQ to record); any other, or an hour of them, fails the job."""
    primary = durable.primary_before_reading(svc)
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.QUEUED:
        return SKIPPED
    claim = new_claim()
    try:
        return submit(svc, job, primary=primary, claim=claim)
    except Exception as exc:
        if isinstance(exc, (NotReplicated, RedisError)):
            # Redis failing over, not BFL: the job goes back in line as it was once Redis answers, and nothing is
            # paused (else it would hold its slot until the sweep finds its submission's lease over).
            durable.record_durably(svc, lambda: _back_in_line(svc, job, claim))
            raise
        if isinstance(exc, RetryableError) and not schedule.timed_out(job.created_at, time.time()):
            wait_for_room(svc, job, None)
            raise
        message = exc.message if isinstance(exc, FluxhookError) else f"submission failed: {type(exc).__name__}"
        svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                            error={"code": _failure_code(exc), "message": message},
                            effects=[ReleaseBudget(job.id, job.key_id), *accounting.on_end(job, st.FAILED, time.time())])
        task_inputs.drop(svc, job.id)
        if not isinstance(exc, BFLError):
            raise
        return st.FAILED


def _back_in_line(svc: Services, job: Job, claim: str) -> bool:
    """A submission cut off by Redis failing over: its lock goes (its release may have been lost with the old
    primary, and would hold the job's next send for the lock's whole life) and the job goes back in line;
    unless another sender holds the job's lock by now (the new primary had lost this one's turn and gave the
    job another): that sender alone may send it, and its slot is not this one's to give back."""
    locks, lock = svc.store.locks, svc.store.keys.submit_lock(job.id)
    if not locks.release(lock, claim) and locks.holder(lock) is not None:
        return True
    return svc.slots.requeue(job)


def _failure_code(exc: Exception) -> str:
    return "insufficient_credits" if getattr(exc, "code", None) == "insufficient_credits" else "bfl_error"
