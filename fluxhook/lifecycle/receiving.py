"""Receiving BFL's callbacks: a verified report becomes the job's next step, or a refusal with its reason.

Two ways in, one per callback URL: ``receive_job_callback`` for the URL minted for one job (its token names the job,
whose own secret proves the body), ``receive_static_callback`` for ``/webhooks/bfl`` (tasks submitted elsewhere with an
account's static secret, and tracked). Each returns a ``Receipt`` (what to answer, how the callback counts) or raises
``CallbackRefused`` (with its reason) or another ``FluxhookError`` for BFL to try again later. A callback that overtakes
BFL's answer to the submission, or comes for a task not tracked yet, is kept until the job knows its task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import IO

from fluxhook import metrics
from fluxhook.bfl.reports import BFLReport, parse_callback, read_callback
from fluxhook.bfl.verification import Headers, verify_callback
from fluxhook.core import signing
from fluxhook.core.errors import CallbackRefused, FluxhookError, Gone, InvalidRequest, NotReady, Unauthorized
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle.steps import reconciling, timeline
from fluxhook.lifecycle.steps.applying import apply_report, from_callback
from fluxhook.lifecycle.steps.kept_callbacks import keep_callback, keep_early_callback
from fluxhook.services import Services

log = logging.getLogger("fluxhook.webhooks")


@dataclass(frozen=True)
class Receipt:
    """What became of an accepted callback: the answer for BFL, and how the callback counts."""

    status: int
    answer: dict
    # accepted, duplicate or kept: the ``outcome`` label of fluxhook_callbacks_total.
    counted_as: str
    job_id: str | None = None
    # Already counted, in the step that applied its report (the view must not count it again).
    counted: bool = False
    # Said in the request's one log line.
    detail: dict = field(default_factory=dict)


def _counted_as(outcome: ReportOutcome) -> str:
    return "duplicate" if outcome == ReportOutcome.DUPLICATE else "accepted"


def _notes(job_id: str, report: BFLReport, *, hint: bool = False):
    """What a callback records with its report on a job, in the same step: its timeline entry, and its count unless it
    is a hint (the callback is counted once, by its view, however many jobs it reaches)."""
    # As of its arrival: a failure is noted after the poll that checks it is queued, and that poll can answer first.
    arrived = time.time()
    marks = {"hint": True} if hint else {}

    def notes(outcome: ReportOutcome):
        entry = timeline.entry(job_id, "callback", at=arrived, outcome=_counted_as(outcome), bfl_status=report.status,
                               result=outcome, **marks)
        return [entry] if hint else [entry, metrics.counted("fluxhook_callbacks", outcome=_counted_as(outcome), reason="")]
    return notes


def _apply(svc: Services, job_id: str, report: BFLReport, proven: bool, model: str | None) -> ReportOutcome:
    return apply_report(svc, job_id, report, from_callback(proven), expect_task=report.bfl_id, model=model,
                        notes=_notes(job_id, report))


def _applied(job_id: str, report: BFLReport, outcome: ReportOutcome) -> Receipt:
    return Receipt(200, {"ok": True, "job_id": job_id, "outcome": outcome}, _counted_as(outcome), job_id,
                   counted=True, detail={"bfl_id": report.bfl_id, "bfl_status": report.status, "outcome": outcome})


def _refuse(svc: Services, reason: str, error: FluxhookError, job_id: str | None = None) -> CallbackRefused:
    """The refusal to raise; on the timeline of the job ``job_id`` (known to exist) too."""
    if job_id is not None:  # refused on a job's own URL (bad secret, another task): worth seeing on its timeline
        timeline.record(svc, job_id, "callback", outcome="refused", reason=reason)
    log.warning("callback refused", extra={"reason": reason, "job_id": job_id})
    return CallbackRefused(reason, error, job_id=job_id)


def _refuse_on_job(svc: Services, reason: str, error: FluxhookError, job_id: str) -> CallbackRefused:
    """The refusal to raise for a callback on a job's own URL: on its timeline too while the job exists."""
    return _refuse(svc, reason, error, job_id if svc.jobs.get(job_id) is not None else None)


def receive_job_callback(svc: Services, token: str, headers: Headers, body: IO[bytes],
                         length: int | None) -> Receipt:
    """A callback on the URL minted for one job: ``token`` is that URL's; its ``body`` (``length`` bytes, if
    said) is read only once the token is one fluxhook issued."""
    config = svc.config
    claims = signing.webhook_token_claims(config.secret_keys, token)
    if claims is None:
        raise _refuse(svc, "bad_token", Unauthorized("this callback URL is not one fluxhook issued"))
    job_id, model = claims
    try:
        raw = read_callback(body, length)
    except FluxhookError as exc:
        raise _refuse_on_job(svc, exc.code, exc, job_id) from None
    try:
        # The secrets derive from the job id alone: checked before Redis is asked anything.
        proven = verify_callback(headers, raw, signing.job_webhook_secrets(config.secret_keys, job_id),
                                 required=config.webhook_require_secret)
    except Unauthorized as exc:
        if svc.jobs.get(job_id) is None:
            raise Gone("this job no longer exists") from None
        raise _refuse(svc, "bad_secret", exc, job_id) from None
    try:
        report = parse_callback(raw)
    except InvalidRequest as exc:
        raise _refuse_on_job(svc, exc.code, exc, job_id) from None
    outcome = _apply(svc, job_id, report, proven, model)
    if outcome == ReportOutcome.GONE:
        raise Gone("this job no longer exists")
    if outcome == ReportOutcome.OTHER_TASK:
        raise _refuse(svc, "wrong_task", Unauthorized("this callback is for another task than this URL's job"), job_id)
    if outcome == ReportOutcome.NOT_SUBMITTED:
        return _keep_until_submitted(svc, job_id, report, raw, proven, model)
    return _applied(job_id, report, outcome)


def _keep_until_submitted(svc: Services, job_id: str, report: BFLReport, body: bytes, proven: bool,
                          model: str | None) -> Receipt:
    """A callback that overtook BFL's answer to our submission: keep it for this job, for when it knows its task."""
    if not proven:
        # Nothing ties an unproven body to this job yet: a non-2xx makes BFL send it again.
        raise NotReady("the job is still being submitted; retry", status=409)
    owner = svc.jobs.get_by_bfl_id(report.bfl_id)
    if owner is not None and owner.id != job_id:
        raise _refuse(svc, "wrong_task", Unauthorized("this callback is for another task than this URL's job"), job_id)
    job = svc.jobs.get(job_id)
    if job is not None and job.uncertain_at is not None and reconciling.adopt_task(svc, job, report):
        # Its submission's answer never came: BFL's callback, proven by the job's own secret, names its task.
        return _applied(job_id, report, _apply(svc, job_id, report, proven, model))
    outcome = keep_early_callback(svc, job_id, body)
    if outcome == ReportOutcome.GONE:
        raise Gone("this job no longer exists")
    timeline.record(svc, job_id, "callback", outcome="kept", bfl_status=report.status)
    log.info("callback kept until the submission is recorded",
             extra={"job_id": job_id, "bfl_id": report.bfl_id, "outcome": outcome})
    return Receipt(202, {"ok": True, "outcome": outcome or "kept_until_submitted"}, "kept", job_id)


def _verifying_account(svc: Services, headers: Headers, raw: bytes) -> str:
    """The account whose webhook secret the callback proves (``BFL_<NAME>_WEBHOOK_SECRET``); refused if none does."""
    refusal: Unauthorized | None = None
    # With no secret configured anywhere, the first account's check says so.
    for account in [a for a in svc.config.accounts if a.webhook_secrets] or svc.config.accounts[:1]:
        try:
            verify_callback(headers, raw, account.webhook_secrets, required=True)
            return account.name
        except Unauthorized as exc:
            refusal = refusal or exc
    raise _refuse(svc, "bad_secret", refusal or Unauthorized()) from None


def receive_static_callback(svc: Services, headers: Headers, body: IO[bytes], length: int | None) -> Receipt:
    """A callback on ``/webhooks/bfl``, for a task submitted elsewhere with an account's static secret (its ``body``,
    ``length`` bytes if said).

    Every app that submits its own tasks through the account holds that secret, so the callback proves nothing of
    its task: it is a hint. Each job tracking the task through that account asks BFL once (``steps.applying.hint``)
    and applies only BFL's answer; a job fluxhook submitted, or another account's, is never touched. That the task
    was reported is kept for the jobs that track it later (``202`` when none does yet). The answer names no job.
    """
    raw = read_callback(body, length)
    account = _verifying_account(svc, headers, raw)
    report = parse_callback(raw)
    hinted = keep_callback(svc, account, report.bfl_id, notes_for=lambda job: _notes(job.id, report, hint=True))
    detail = {"bfl_id": report.bfl_id, "bfl_status": report.status, "jobs": len(hinted)}
    if not hinted:
        log.info("callback kept for an untracked task", extra={"bfl_id": report.bfl_id})
        return Receipt(202, {"ok": True, "outcome": "kept_until_tracked"}, "kept", detail=detail)
    outcomes = {outcome for _, outcome in hinted}
    outcome = ReportOutcome.CONFIRM_QUEUED if ReportOutcome.CONFIRM_QUEUED in outcomes else ReportOutcome.DUPLICATE
    job_id = hinted[0][0].id if len(hinted) == 1 else None
    return Receipt(200, {"ok": True, "outcome": outcome}, _counted_as(outcome), job_id, detail={**detail, "outcome": outcome})
