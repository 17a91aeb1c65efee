"""Sending a job that holds a slot to BFL: once, with its own callback URL and secret, within today's credits,
and BFL's answer recorded. With it, the budget's word on a job before it is made and while it waits out of line."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import NamedTuple

from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core import signing, tracing
from fluxhook.core.accounts import DEFAULT_ACCOUNT, Account
from fluxhook.core.backoff import backoff_delay
from fluxhook.core.catalog import first_poll_at
from fluxhook.core.errors import (
    BFLAccountDown,
    BFLRateLimited,
    BFLSubmissionUncertain,
    BudgetExceeded,
    FluxhookError,
    InsufficientCredits,
    InvalidRequest,
)
from fluxhook.core.holds import LOST_SEND_TRACE, SUBMIT_LEASE
from fluxhook.core.job import ABORTED_AT_DEADLINE, ABORTED_WITH_BATCH, EARLY_KEPT, Job, deadline_passed
from fluxhook.core.outcomes import SKIPPED
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.credits import accounting, budget
from fluxhook.credits.budget import Refusal, Size
from fluxhook.lifecycle.steps import (
    cooling,
    durable,
    end_user_limits,
    ending,
    reconciling,
    recorded,
    revoked_jobs,
    schedule,
    task_inputs,
    timeline,
    waits,
)
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_body
from fluxhook.services import Services
from fluxhook.store.app_keys import AppKey
from fluxhook.store.effects import AccountAccepted, ReleaseBudget
from fluxhook.store.jobs import Lock, Take, Terms
from fluxhook.store.usage import Reservation

log = logging.getLogger("fluxhook.submitting")

# While BFL keeps answering 429 or cannot be reached, the pool waits at most this long between tries.
MAX_PAUSE = 60.0


@dataclass
class _Attempt:
    """One submission: its hold on its job's submit lock, freed with the record of the task BFL took (``freed``), or
    with the slot a refused submission gives back (``Slots.requeue(unlock=)``), else once the submission is over;
    whether the request that creates the job makes it (``in_request``), and the job as the record of BFL's answer
    left it (``recorded``, only for that request)."""

    lock: Lock
    in_request: bool = False
    freed: bool = False
    recorded: Job | None = None


class SendLock(NamedTuple):
    """What holds a job's submit lock: a submission under way in some process (``left``: seconds until its lease
    ends), one that began and never ended (``lost``), or nothing (neither)."""

    left: float = 0.0
    lost: bool = False


def send_lock(svc: Services, job_id: str, now: float | None = None) -> SendLock:
    """Who holds the job's submit lock now (``SendLock``)."""
    key = svc.store.keys.submit_lock(job_id)
    value = svc.store.locks.holder(key)
    if value is None:
        return SendLock()
    _, at, millis = value.partition("@")  # when a submission took it (``new_lock_token``)
    if not (at and millis.isascii() and millis.isdigit()):
        # A cancel's or a revocation's hold, or a submission of an older release: it lapses by itself.
        return SendLock(left=svc.store.locks.seconds_left(key))
    left = int(millis) / 1000 + SUBMIT_LEASE - (time.time() if now is None else now)
    return SendLock(left=left) if left > 0 else SendLock(lost=True)


def check_budget(svc: Services, job: Job, key: AppKey | None = None) -> None:
    """Before a new job is created: ``BudgetExceeded`` (402) when today's ``BFL_DAILY_CREDIT_LIMIT`` or its app
    key's ``daily_credits`` leave nothing, so that nothing is created. Nothing is reserved until it is sent."""
    try:
        budget.admission(svc, job.id, job.model or "", job.input or {}, key=key, end_user=budget.end_user_of(job))
    except BudgetExceeded:
        metrics.count(svc, "fluxhook_submissions", outcome="budget_exceeded")
        raise


def wait_out_of_line(svc: Services, job: Job) -> str | None:
    """A ``queued`` job waiting out of line has come due: None when it goes back in line, once the budget would let it
    go (it reserves when it is sent; a job waiting to go alone keeps holding later jobs back by its record of waiting
    meanwhile); while it must still wait (the day's credits, the account's or its app key's, are spent; or it must go
    alone and others are live), it stays out of line, tried again later (``queued``), or fails once its hour is up
    (``failed``), as its submission would: back in line, a job the budget refuses would take a turn ahead of other
    apps' jobs that can go, and give it back, every time it came due."""
    key, live = _key_of(svc, job)
    if not live or end_user_limits.ending_if_blocked(svc, key, job, time.time()) is not None:
        return None  # its submission fails it, or ends it as its end user's block does
    if end_user_limits.still_waits_for_active(svc, job):
        return end_user_limits.wait_for_active(svc, job)
    request = _request_or_size(svc, job, None)
    # Asked again: while it must wait, its record of waiting to go alone is renewed; it reserves nothing here.
    reservation = budget.look_again(svc, job.id, job.model or "", request, key=key, end_user=budget.end_user_of(job))
    if reservation is None or reservation.admitted:
        return None  # it reserves when it is sent
    return _over_budget(svc, job, reservation, key, budget.refusal_kind(reservation))


def _key_of(svc: Services, job: Job) -> tuple[AppKey | None, bool]:
    """The job's app key (None: an admin token's job), and whether the job may still be sent: not once its key
    is revoked, or gone."""
    if not job.key_id:
        return None, True
    key = svc.store.app_keys.get(job.key_id)
    return key, key is not None and key.revoked_at is None


def _request_or_size(svc: Services, job: Job, task_input: dict | None) -> dict | Size:
    """What the budget measures the job's request by: its input, or the size its record keeps of one that
    waits in storage (read from storage only when the record keeps neither)."""
    request = task_input if task_input is not None else (job.input or None)
    if request is not None:
        return request
    size = Size.decode(job.input_size)
    return size if size is not None else task_inputs.load(svc, job.id, job.input)


def submit(svc: Services, job_id: str, task_input: dict | None = None, primary: str | None = None,
           lock_token: str | None = None, *, account: str | None = None) -> str:
    """Send a ``queued`` job that holds a slot (read as recorded under its submit lock, which is taken and read in one
    round trip) to BFL, at most once at a time, reserving its price against today's limits first. ``task_input``: its
    input when the caller has it in hand, so a large one is not read back from storage; ``primary``: the Redis primary
    as known before the job was read, when replicas are required (``durable``); ``lock_token``: the value its submit
    lock is taken with (``new_lock_token``), for a caller that may have to give the lock back; ``account``: the account
    whose slot the job holds, when the caller knows it (the slot was just taken), else read.

    Returns ``submitted``, also when BFL's answer never came (the job then awaits BFL's word on its task, never sent
    again: ``reconciling``); ``queued`` when BFL answered 429 (the job is back in line and the pool pauses for
    Retry-After) or today's credits are spent (only this job waits); ``failed`` when they were spent for the job's
    whole hour; ``aborted`` when its deadline (Cancel-After) has passed (never sent); ``skipped`` if another process is
    submitting it, or it was canceled or ended meanwhile. Other BFL errors propagate."""
    return _under_lock(svc, job_id, _Attempt(_submit_lock(svc, job_id, lock_token)), task_input, primary, account)


def submit_in_request(svc: Services, job: Job, task_input: dict | None, *, account: str) -> tuple[str, Job]:
    """``submit`` for the request that creates ``job`` (as it recorded it, with a slot of ``account``) and answers
    with it: a refusal of the budget raises ``BudgetExceeded`` (the request answers 402 and creates nothing) instead
    of keeping the job waiting. Its outcome (as ``submit``'s), and the job as recorded after it: the step that records
    BFL's answer hands the record back (no read after it), else it is read (``JobNotFound`` once gone)."""
    attempt = _Attempt(_submit_lock(svc, job.id, None), in_request=True)
    outcome = _under_lock(svc, job.id, attempt, task_input, None, account, made=job)
    return outcome, attempt.recorded or recorded.current(svc, job.id)


def _submit_lock(svc: Services, job_id: str, token: str | None) -> Lock:
    return Lock(svc.store.keys.submit_lock(job_id), token or new_lock_token(), LOST_SEND_TRACE)


def _under_lock(svc: Services, job_id: str, attempt: _Attempt, task_input: dict | None, primary: str | None,
                account: str | None, made: Job | None = None) -> str:
    """The submission under the job's submit lock, taken with the job's read, and freed once it is over (unless
    the step that recorded BFL's answer freed it). ``made``: the job as the caller recorded it with its slot a moment
    ago (the request that creates it), which no read would tell it more of: no other caller has its id yet."""
    current: Job | None = made
    if made is not None:
        taken, holds = svc.store.locks.acquire(*attempt.lock), True
    else:
        # Under the lock a cancel or a deadline also takes: the job as it is now, not as read before.
        taken, current, holds = svc.jobs.lock_for_send(job_id, attempt.lock)
    if not taken:
        return SKIPPED
    try:
        if current is None:
            return SKIPPED  # deleted meanwhile
        if not holds and current.status == st.QUEUED:
            # Its slot went back while this sender stalled past its submission's lease: the sweep put the job back in
            # line, and the sender its next turn gives it sends it.
            log.warning("a job whose slot went back is not sent", extra={"job_id": job_id})
            return SKIPPED
        with tracing.job_span("fluxhook.send", job_id, current.traceparent):
            return _submit(svc, current, task_input, primary, attempt, account)
    finally:
        if not attempt.freed:
            svc.store.locks.release(attempt.lock.key, attempt.lock.value)


def new_lock_token(now: float | None = None) -> str:
    """A value for one submission's lock, its own (only that submission may free it), saying when it was taken:
    its lease runs from then (``send_lock``)."""
    return f"{secrets.token_hex(8)}@{int((time.time() if now is None else now) * 1000)}"


def recover_lost_send(svc: Services, job: Job) -> str:
    """A ``queued`` job whose submission began and never ended (its lock outlived its lease: the process died, or
    hung, mid-send): BFL may have its task and charge for it, so it is never sent again. It awaits BFL's word on
    its task as a send whose answer never came does (``reconciling``), its reservation spent meanwhile, and its
    lock goes. ``submitted``, or ``skipped`` if it moved on meanwhile.

    A process that died in the few milliseconds between taking the lock and sending is taken for one that sent:
    its job waits for a callback that never comes and fails after the task's hour, never paid for twice."""
    account = svc.config.account(svc.slots.account_of(job.id))
    try:
        measured: dict | Size | None = _request_or_size(svc, job, None)
    except InvalidRequest:
        measured = None  # its input in storage is gone: what it held reserved stands in for its price
    outcome = reconciling.await_task(svc, job, account, _stand_in(svc, job, measured, svc.store.usage.held(job.id)))
    svc.store.locks.release(svc.store.keys.submit_lock(job.id))
    if outcome != SKIPPED:
        log.warning("a submission that began and never ended may have reached BFL: not sent again",
                    extra={"job_id": job.id, "account": account.name})
    return outcome


def _submit(svc: Services, job: Job, task_input: dict | None, primary: str | None, attempt: _Attempt,
            slot_account: str | None) -> str:
    """The submission, under its lock (``job`` as read under it): the key's and the budget's word, the send, and BFL's
    answer recorded."""
    if job.status != st.QUEUED:
        return SKIPPED  # canceled or ended meanwhile: never sent
    if deadline_passed(job.deadline, time.time()):
        ending.end_unsent(svc, job, ABORTED_AT_DEADLINE)
        return st.ABORTED
    if job.batch_id and svc.store.batches.canceled(job.batch_id):
        ending.end_unsent(svc, job, ABORTED_WITH_BATCH)  # its batch was canceled while it waited its turn
        return st.ABORTED
    key, live = _key_of(svc, job)
    if not live:
        # A job of a key revoked while it waited is never sent (its revocation may have missed it in line).
        revoked_jobs.fail(svc, job)
        return st.FAILED
    blocked = end_user_limits.ending_if_blocked(svc, key, job, time.time())
    if blocked is not None:
        # Its end user was blocked while it waited (its block may have missed it in line, or come since).
        ending.end_unsent(svc, job, blocked)
        return blocked.status
    account = svc.config.account(slot_account or svc.slots.account_of(job.id))
    if not end_user_limits.take_active(svc, job):
        return end_user_limits.wait_for_active(svc, job, attempt.lock)
    # A large input waiting in storage is read only once the budget lets its job go.
    measured = _request_or_size(svc, job, task_input)
    reservation = budget.reserve(svc, job.id, job.model or "", measured, key=key, account=account,
                                 end_user=budget.end_user_of(job))
    if reservation is not None and not reservation.admitted:
        end_user_limits.give_back_active(svc, job)
        return _refused(svc, job, reservation, account, key, attempt.in_request, attempt.lock)
    try:
        request, task = _send(svc, job, measured, account, primary)
    except BFLSubmissionUncertain as exc:
        # BFL may have the task and charge for it: the job is submitted without it, its bound spent meanwhile.
        _count_not_sent(svc, job, account, exc)
        if svc.config.named_accounts:
            cooling.cool_after(svc, account, exc)
        return reconciling.await_task(svc, job, account,
                                      _stand_in(svc, job, measured, reservation.amount if reservation else 0))
    except BaseException as exc:
        # Not sent: back in line or failed, the job holds nothing against anyone's limit; its admission's hold on its
        # end user's credits stays while it may still be sent (its end drops it).
        end_user_limits.give_back_active(svc, job)
        if reservation is not None:
            svc.store.effects.apply([ReleaseBudget.of(job, account.name, admission=False)])
        if not isinstance(exc, FluxhookError):
            raise
        return _not_sent(svc, job, account, exc, attempt.lock)
    return _record(svc, job, account, key, reservation, request, task, attempt)


def _stand_in(svc: Services, job: Job, measured: dict | Size | None, reserved: int) -> int:
    """What a send BFL may have taken, without a price from BFL, counts as spent (micro-credits): its request's bound
    in the catalog, which no price of it passes; its reservation (``reserved``) when the catalog cannot bound it."""
    model = svc.config.catalog.get(job.model or "")
    bound = None
    if model is not None and measured is not None:
        size = measured if isinstance(measured, Size) else budget.request_size(model, measured)
        bound = budget.bound(model, size)
    return bound if bound is not None else reserved


def _refused(svc: Services, job: Job, reservation: Reservation, account: Account, key: AppKey | None,
             in_request: bool, lock: Lock) -> str:
    """A submission the budget did not let go: what becomes of its job, by what the refusal waits for (its submit
    ``lock`` freed with the slot it gives back)."""
    refusal = budget.refusal_kind(reservation, account)
    if refusal is Refusal.ACCOUNT_SPENT:
        # This account's own day is spent: it rests until tomorrow, and the job goes back in line for another.
        cooling.cool_for_the_day(svc, account)
        svc.slots.requeue(job, unlock=lock)
        return st.QUEUED
    if in_request and refusal is Refusal.SPENT:
        # Others took the last credits between the request's look and now: refused as at its look.
        metrics.count(svc, "fluxhook_submissions", outcome="budget_exceeded")
        raise budget.refusal_error(svc, reservation, time.time(), key, budget.end_user_of(job))
    return _over_budget(svc, job, reservation, key, refusal, lock)


def _send(svc: Services, job: Job, measured: dict | Size, account: Account, primary: str | None) -> tuple[dict, dict]:
    """Send the job's task to BFL through ``account``: the request as sent, and BFL's answer."""
    config = svc.config
    request = measured if not isinstance(measured, Size) else task_inputs.load(svc, job.id, job.input)
    # The BFL client leaves the webhook fields out for a model whose schema refuses them; its task is then
    # polled from its submission (first_poll_at).
    body = dict(budget.capped(config.catalog.get(job.model or ""), request),
                webhook_url=signing.job_webhook_url(config.public_base_url, config.secret_keys, job.id, job.model),
                webhook_secret=signing.job_webhook_secret(config.secret_keys, job.id))
    durable.confirm_before_sending(svc, primary)
    return request, svc.bfl(account.name).submit(job.model or "", body)


def _record(svc: Services, job: Job, account: Account, key: AppKey | None, reservation: Reservation | None,
            request: dict, task: dict, attempt: _Attempt) -> str:
    """BFL has the task (``task``: its id, polling_url and price) and charges for it: its record comes first, before
    anything else that may fail. ``request``: as sent (its input, read from storage if it waited there)."""
    now = time.time()
    # With the move: the day's usage, the budget's spend in place of the reservation, the credits metric, the count
    # of submissions, the job's timeline and its account's standing (the next refusal starts its backoff afresh, and
    # an account on probation takes tasks again); the submit lock freed, and a callback that came before this answer
    # (``keep_early_callback``) taken, so a callback kept after it finds the task recorded.
    fields, effects = accounting.on_submitted(job.model or "", task["cost"], reservation.amount if reservation else 0, now,
                                             key_id=job.key_id, key_name=key.name if key else "",
                                             account=account.name, end_user=job.end_user)
    if reservation is not None:
        effects.append(ReleaseBudget.of(job, account.name))
    effects.append(metrics.counted("fluxhook_submissions", outcome="submitted", account=account.name))
    entry = timeline.entry(job.id, "submission", outcome="submitted", bfl_id=task["id"], account=account.name)
    accepted = AccountAccepted(account.name, svc.slots.pool_of(job), now)
    model, grace = svc.config.catalog.get(job.model or ""), svc.config.callback_grace_seconds
    # The job is in no line: the dispatch that gave it its slot took it out. As the move frees its lock, it takes the
    # body kept for it (``keep_early_callback``), if its record says one was (``EARLY_KEPT``).
    terms = Terms(unlock=attempt.lock, take=Take(svc.store.keys.kept_for_job(job.id), EARLY_KEPT),
                  out_of_line=True, read_back=attempt.in_request)
    early: list[bytes] = []

    def record() -> bool:
        change = svc.jobs.transition(
            job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id=task["id"], polling_url=task["polling_url"],
            bfl_status=st.BFL_PENDING, input=None, submitted_at=now, account=account.name,
            due=first_poll_at(model, now, grace), due_if_watched=first_poll_at(model, now, grace, watched=True),
            terms=terms, effects=[*effects, entry, accepted], **fields)
        attempt.freed, attempt.recorded = change.moved, change.record
        if change.taken is not None:
            early.append(change.taken)
        return change.moved

    moved = durable.record_durably(svc, record)
    budget.check_price(svc, job.model or "", request, task["cost"])
    if not moved:
        if reconciling.adopt_answer(svc, job.id, task):
            # The send hung past its lease and its job awaits BFL's word meanwhile (``recover_lost_send``): this is
            # it. The bound counted then stays spent until the task's price settles it.
            log.warning("a submission's answer came after its lease: its job follows that task",
                        extra={"job_id": job.id, "bfl_id": task["id"]})
            return st.SUBMITTED
        # BFL has the task, and charges for it, though the job is gone: its price still counts.
        metrics.record(svc, [*effects, accepted])
        log.warning("job gone before its submission was recorded", extra={"job_id": job.id, "bfl_id": task["id"]})
        return SKIPPED
    log.info("job submitted", extra={"job_id": job.id, "bfl_id": task["id"], "model": job.model})
    if job.input is None:
        task_inputs.drop(svc, job.id)  # its record kept none: it waited in storage, and BFL has it now
    if early:
        attempt.recorded = None  # the callback changes the job again
        _apply_early_callback(svc, job.id, early[-1])
    return st.SUBMITTED


def _apply_early_callback(svc: Services, job_id: str, kept: bytes) -> None:
    """BFL's callback overtook its answer to us: kept meanwhile (``kept``, as Redis kept it), it is applied now."""
    submitted = svc.jobs.get(job_id)
    try:
        if submitted is not None:
            apply_kept_body(svc, submitted, svc.store.kept.opened(kept))
    except Exception:
        # The task is at BFL and recorded: that must not read as a failed submission. The kept
        # callback stays kept (apply_kept_body puts it back) for BFL's retry or a later look.
        log.exception("applying an early callback failed", extra={"job_id": job_id})


def _not_sent(svc: Services, job: Job, account: Account, exc: FluxhookError, lock: Lock) -> str:
    """What becomes of a job BFL did not take: back in line (``queued``, its submit ``lock`` freed with its slot)
    while its account cools or BFL is full; any other error propagates."""
    _count_not_sent(svc, job, account, exc)
    if svc.config.named_accounts and isinstance(exc, (BFLAccountDown, InsufficientCredits)):
        # Several accounts: this one cools for every process, and a job that never reached BFL goes
        # back in line, for another account it may use or this one's recovery.
        cooling.cool_after(svc, account, exc)
        svc.slots.requeue(job, unlock=lock)
        log.info("job queued: its BFL account cools down", extra={"job_id": job.id, "account": account.name})
        return st.QUEUED
    if isinstance(exc, BFLRateLimited) or (isinstance(exc, BFLAccountDown) and exc.out_of_capacity):
        # One account: BFL is full or out of capacity, so the job waits in line while its pool pauses.
        pause = wait_for_room(svc, job, exc.retry_after, lock)
        log.info("job queued: BFL is at its limit", extra={"job_id": job.id, "retry_after": round(pause, 1)})
        return st.QUEUED
    raise exc


def _count_not_sent(svc: Services, job: Job, account: Account, exc: FluxhookError) -> None:
    """A send BFL did not answer with a task: counted, and on the job's timeline."""
    metrics.count(svc, "fluxhook_submissions", outcome=exc.code, account=account.name)
    timeline.record(svc, job.id, "submission", outcome=exc.code, account=account.name)


def _over_budget(svc: Services, job: Job, reservation: Reservation, key: AppKey | None, refusal: Refusal,
                 lock: Lock | None = None) -> str:
    """A queued job whose submission the daily credit limit refuses (``refusal``: what it waits for): it waits for
    the next UTC day, tried again now and then, until its hour is up; or, when it must go alone while others'
    reservations are live, until they settle. Its record says which (``waits.begin``), before it
    leaves its slot (and its submission's ``lock``, when one sent it): a job waiting aside always has its reason."""
    now = time.time()
    if refusal is Refusal.SETTLING and not schedule.timed_out(job.created_at, now):
        # To go alone while others' reservations are live, or its account's own limit held by submissions under
        # way: they settle within seconds.
        waits.begin(svc, job, budget.waiting_for(svc, reservation, now, key))
        svc.slots.requeue(job, wait=budget.settling_recheck(reservation), unlock=lock)
        log.info("job queued: it goes once the other submissions' prices are known",
                 extra={"job_id": job.id, "retry_after": budget.settling_recheck(reservation)})
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
                            effects=[ReleaseBudget.of(job), *accounting.on_end(job, st.FAILED, now)])
        task_inputs.drop(svc, job.id)
        return st.FAILED
    wait = budget.recheck_in(now, job.created_at + schedule.POLL_DEADLINE)
    # Only this job waits, out of line with its slot freed: the budget says nothing about BFL's room, so its
    # pool is neither paused nor struck. When it comes due (the day turned, its hour is up, or its limit was raised),
    # the sweep's check of a queued job puts it back in line at its old place, and it is tried again.
    waits.begin(svc, job, waiting)
    svc.slots.requeue(job, wait=wait, unlock=lock)
    log.info("job queued: today's credits are spent", extra={
        "job_id": job.id, "spent": accounting.from_micro(reservation.spent), "retry_after": round(wait, 1)})
    return st.QUEUED


def wait_for_room(svc: Services, job: Job, retry_after: float | None, lock: Lock | None = None) -> float:
    """Put the job back in line and pause its pool at the account whose slot it held: BFL's Retry-After, or growing
    backoff if BFL keeps refusing. ``lock``: the submit lock of the submission refused, freed with the slot."""
    strikes = svc.slots.strike(svc.slots.pool_of(job), svc.slots.account_of(job.id) or DEFAULT_ACCOUNT)
    pause = max(retry_after or 0.0, backoff_delay(strikes, base=1.0, cap=MAX_PAUSE))
    waits.begin(svc, job, Waiting(WaitReason.BFL_CAPACITY, time.time() + pause))
    svc.slots.requeue(job, pause, unlock=lock)
    return pause
