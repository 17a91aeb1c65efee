"""Creating a job: the one way a new job is made, for ``POST /v1/jobs`` and the BFL-compatible ``POST /v1/{model}``
alike, within the caller's app key's limits.

In order: the key's models, the input as BFL's schema reads it (its 422, before anything counts), the accounts the job
may use (``key_limits.route_of``), and the key's requests per minute; the budget's word (402 and nothing created when
the day is spent, or its end user's would be by its jobs under way: ``budget.admission``); the record (a large input in
storage, never in Redis) with its place in line, in one step, which makes nothing when the key's queue is full (429
``queue_full``); then a BFL slot and the submission in this request
when the caller may wait on BFL (``submit_here``), else a worker's sender takes it from the line (``worker/sending.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.accounts import pool_for
from fluxhook.core.catalog import Model
from fluxhook.core.end_users import EndUserLimits
from fluxhook.core.errors import BFLError, BudgetExceeded
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.wait_reasons import Waiting
from fluxhook.credits import budget
from fluxhook.credits.budget import request_size
from fluxhook.lifecycle.steps import end_user_limits, key_limits, submission, task_inputs, timeline, waits
from fluxhook.lifecycle.steps.admission import check_input, strict_input, unknown_input_warnings, usable_model
from fluxhook.lifecycle.steps.app_webhooks import AppWebhook
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.services import Services
from fluxhook.store.idempotency import Hold
from fluxhook.store.owners import DEFAULT_WEIGHT
from fluxhook.store.slots import Joined, KnownCap

log = logging.getLogger("fluxhook.jobs")

@dataclass(frozen=True)
class JobRequest:
    """What a caller asks for: BFL's request for ``model``, and what fluxhook keeps with the job."""

    model: str
    input: dict
    metadata: dict = field(default_factory=dict)
    notify_url: str | None = None
    # The BFL-compatible API's own webhook_url and secret, called once the file is stored.
    app_webhook: AppWebhook | None = None
    # The request body's size in bytes: a large one waits in storage.
    body_size: int = 0
    # The BFL account the caller asks for (None: any its key may use).
    account: str | None = None
    # The request's hold on its Idempotency-Key, which the job names itself in when it is recorded.
    idempotency: Hold | None = None
    # Seconds from creation to the job's deadline (``Cancel-After``, ``core.job.parse_cancel_after``); None: it has none.
    cancel_after: int | None = None
    # Whether the request asks for strict input (``Prefer: handling=strict``): a field of ``input`` the model's schema
    # does not know is refused, as it is for a key with ``strict_input``.
    strict_input: bool = False
    # Asked through BFL's own routes, answered as BFL answers: a field BFL's schema does not know is BFL's to ignore
    # or refuse, never a warning nor fluxhook's refusal.
    as_bfl: bool = False
    # The app's own user the job is for (``core.end_users``): never sent to BFL; limited as its key sets.
    end_user: str | None = None


@dataclass(frozen=True)
class Created:
    """A new job as recorded once created, and why it waits when it was left queued (None: it does not, or it is
    not queued, as a job sent within its request is not): what its creation found, so its answer does not ask the
    slots again."""

    job: Job
    waiting: Waiting | None = None
    # What its answer says of its input: each field the model's schema does not know, sent as given.
    warnings: tuple[str, ...] = ()


def create_job(svc: Services, caller: Caller, request: JobRequest, *, submit_here: bool) -> Created:
    """Admit, record and submit (or queue) a new job; the job as recorded after that. ``submit_here``: whether
    this call may wait on BFL for the submission (a web process keeps only so many threads waiting on BFL);
    if not, a worker submits the job once it has a slot.

    Raises ``UnknownModel`` (400) for a model the catalog does not know (nothing is sent), ``InputRefused`` (400; BFL's
    422 on its own route) for an input BFL's schema refuses, ``UnknownField`` (400) for a field of it the schema does not
    know under strict input (else ``Created.warnings`` names it), ``ModelNotAllowed`` (403), ``RateLimited`` (429) or
    ``QueueFull`` (429, its ``max_queued``) past the key's limits or its end user's, ``EndUserBlocked`` (403),
    ``BudgetExceeded`` (402) past today's credits, and BFL's errors that prove the submission in hand never reached BFL
    (then nothing is left). A submission BFL did not answer in time may have reached it: its job is ``submitted`` and
    awaits BFL's word on its task (``steps.reconciling``), so a retry of the request finds that job, never a second task.
    """
    model = usable_model(svc, caller, request.model)
    check_input(model, request.input)
    warnings = () if request.as_bfl else tuple(unknown_input_warnings(
        model, request.input, strict=strict_input(caller, request.strict_input)))
    route = key_limits.route_of(svc, caller, model.name, request.account)
    now = time.time()
    job_id = new_job_id(now)
    taken = key_limits.take_request(svc, caller, now)
    for_end_user, job = None, None
    try:
        for_end_user = end_user_limits.take(svc, caller, request.end_user, job_id, now)
        with tracing.job_span("fluxhook.create", job_id):
            job = _new_job(svc, caller, request, route, job_id, now,
                           for_end_user.limits if for_end_user is not None else None)
            return replace(_admit(svc, caller, request, model, job, submit_here), warnings=warnings)
    except BaseException:
        # Only accepted submissions count against requests_per_minute: a refused one gives its count back, and the
        # hold its admission took on its end user's credits.
        key_limits.give_back_request(svc, taken)
        end_user_limits.give_back(svc, for_end_user)
        if job is not None:
            budget.give_back_admission(svc, job_id, budget.end_user_of(job))
        raise


def _new_job(svc: Services, caller: Caller, request: JobRequest, route: str | None, job_id: str, now: float,
             end_user: EndUserLimits | None) -> Job:
    """The job a request makes, as it will be recorded (``end_user``: its end user's limits; None: it names no end
    user, or was made with an admin token, whose end users have none)."""
    webhook = request.app_webhook
    return Job(id=job_id, status=st.QUEUED, model=request.model, metadata=request.metadata,
              input=request.input, pool=pool_for(request.model, svc.config.pooled_limits), created_at=now,
              route=route, updated_at=now, notify_url=request.notify_url, key_id=caller.key_id,
              end_user=request.end_user, end_user_daily_credits=end_user.daily_credits if end_user is not None else None,
              end_user_max_active=end_user.max_active if end_user is not None else None,
              deadline=now + request.cancel_after if request.cancel_after is not None else None,
              app_webhook_url=webhook.url if webhook else None,
              app_webhook_secret=webhook.sealed_secret if webhook else None,
              traceparent=tracing.current_traceparent())


def _admit(svc: Services, caller: Caller, request: JobRequest, model: Model, job: Job, submit_here: bool) -> Created:
    """The budget's reservation, the record, a place in line (and a slot), the submission in hand."""
    submission.check_budget(svc, job, key=caller.key)
    # With replicas required, a worker sends the job: from here it would always reach BFL before the request's WAIT, so a
    # job lost in a failover would be paid for, then created and paid for again by the client's retry. A job this
    # request does not send takes no slot here: a worker's sender takes one for it when it can send it at once.
    here = submit_here and not svc.store.replication.required
    # The request read its key: its max_active and weight are the ones the slots keep of it (the admin tokens have
    # none: no limit, the default weight).
    cap = KnownCap(caller.key.max_active if caller.key else None,
                   float(caller.key.weight) if caller.key else DEFAULT_WEIGHT)
    job, joined = _record(svc, job, model, request.body_size, request.idempotency, send_here=here, cap=cap,
                          queue_limit=key_limits.queue_limit(svc, caller))
    if joined.account is None:
        wait = waits.of_joined(job, joined.line)
        log.info("job queued: waiting for a BFL slot", extra={"job_id": job.id, "model": job.model,
                                                              "waiting": wait.reason if wait else None})
        # The job as this step made it: a read back would cost every queued job a command to learn
        # that a sender took it meanwhile, which its next read or its stream says anyway.
        return Created(job, wait)
    try:
        outcome, after = submission.submit_in_request(svc, job, request.input, account=joined.account)
    except (BFLError, BudgetExceeded):
        # The task never reached BFL (one that may have is a job: submit recorded it): leave nothing behind.
        svc.jobs.delete(job.id)
        task_inputs.drop(svc, job.id)
        raise
    # Sent, or ended unsent, it waits for nothing; put back in line (BFL full, its account cooling, its end user at
    # max_active), it waits for what the step that put it back recorded, read as any queued job's wait is.
    return Created(after, waits.of(svc, after) if outcome == st.QUEUED else None)


def _record(svc: Services, job: Job, model: Model, size: int, idempotency: Hold | None, *,
            send_here: bool, cap: KnownCap, queue_limit: int) -> tuple[Job, Joined]:
    """Record the admitted job (its input in storage if large) with its place in line, in one step, and its slot
    if ``send_here`` and its turn is now; the job as recorded, and its place (``Slots.join``). If
    that fails, a large input kept in storage goes with it: a 5xx, or the key's full queue (``QueueFull``, checked in
    that step against ``queue_limit``), creates nothing."""
    recorded = job
    try:
        kept = task_inputs.keep(svc, job.id, job.input, size)
        recorded = replace(job, input=kept,
                           input_size=None if kept is not None else request_size(model, job.input or {}).encode())
        creation = svc.jobs.creation(recorded, naming=idempotency, waiting=timeline.entry(job.id, "waiting", at=job.created_at))
        joined = svc.slots.join(recorded, send_here=send_here, creation=creation, known_cap=cap, queue_limit=queue_limit)
    except Exception:
        if recorded.input is None:
            task_inputs.drop(svc, job.id)
        raise
    return recorded, joined
