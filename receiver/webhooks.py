"""BFL's callbacks: verify, record, enqueue, answer in milliseconds."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from flask import Blueprint, g, request

from fluxhook import metrics
from fluxhook.bfl.reports import MAX_CALLBACK_BYTES, BFLReport, parse_callback
from fluxhook.bfl.verification import verify_callback
from fluxhook.core import signing
from fluxhook.core.errors import FluxhookError, Gone, InvalidRequest, NotReady, PayloadTooLarge, Unauthorized
from fluxhook.core.outcomes import Outcome
from fluxhook.lifecycle import timeline
from fluxhook.lifecycle.applying import apply_report
from fluxhook.lifecycle.kept_callbacks import keep_callback, keep_early_callback

from .context import services

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger("fluxhook.webhooks")


@bp.after_request
def count_callback(response):
    """Count every callback by what became of it; refusals by the reason given."""
    if g.get("callback_counted"):
        return response
    outcome = g.get("callback_outcome")
    reason = ""
    if outcome is None:
        outcome = "refused"
        reason = g.get("refusal") or _error_code(response)
    metrics.count(services(), "fluxhook_callbacks", outcome=outcome, reason=reason)
    return response


def _error_code(response) -> str:
    body = response.get_json(silent=True) if response.is_json else None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", "error")) if isinstance(error, dict) else f"http_{response.status_code}"


def _raw_body() -> bytes:
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(f"callback bodies are at most {MAX_CALLBACK_BYTES} bytes")
    body = request.stream.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(f"callback bodies are at most {MAX_CALLBACK_BYTES} bytes")
    return body


def _accepted(outcome: Outcome) -> str:
    """How an applied callback is counted: a duplicate, or accepted."""
    return "duplicate" if outcome == Outcome.DUPLICATE else "accepted"


def _notes(job_id: str, report: BFLReport):
    """What an applied callback records with its report, in the same step: its timeline entry and its count."""

    def notes(outcome: Outcome):
        return [timeline.entry(job_id, "callback", outcome=_accepted(outcome), bfl_status=report.status,
                               result=outcome),
                metrics.counted("fluxhook_callbacks", outcome=_accepted(outcome), reason="")]
    return notes


def _apply(job_id: str, report: BFLReport, proven: bool) -> Outcome:
    """Apply a callback's report to the job; the outcome (not ``applied``: GONE, OTHER_TASK, NOT_SUBMITTED)."""
    g.job_id = job_id
    outcome = apply_report(services(), job_id, report, source="webhook", confirmed=False, proven=proven,
                           expect_task=report.bfl_id, attempt="webhooks", notes=_notes(job_id, report))
    if outcome.applied:
        # Counted already, by the notes recorded with the report: count_callback must not count it again.
        g.callback_outcome = _accepted(outcome)
        g.callback_counted = True
    return outcome


def _answer(job_id: str, report: BFLReport, outcome: Outcome):
    # Said in the request's one log line, not a second one: at callback rates, log lines cost.
    g.log_detail = {"bfl_id": report.bfl_id, "bfl_status": report.status, "outcome": outcome}
    return {"ok": True, "job_id": job_id, "outcome": outcome}, 200


def _refuse(reason: str, exc: FluxhookError):
    g.refusal = reason
    if g.get("job_id"):  # refused on a job's own URL (bad secret, another task): worth seeing on its timeline
        timeline.record(services(), g.job_id, "callback", outcome="refused", reason=reason)
    log.warning("callback refused", extra={"reason": reason, "job_id": g.get("job_id")})
    raise exc


def _keep_until_submitted(job_id: str, report: BFLReport, body: bytes, proven: bool):
    """A callback that overtook BFL's answer to our submission: keep it for this job, for when it knows its task."""
    if not proven:
        # Nothing ties an unproven body to this job yet: a non-2xx makes BFL send it again.
        raise NotReady("the job is still being submitted; retry", status=409)
    owner = services().jobs.get_by_bfl_id(report.bfl_id)
    if owner is not None and owner.id != job_id:
        _refuse("wrong_task", Unauthorized("this callback is for another task than this URL's job"))
    outcome = keep_early_callback(services(), job_id, body)
    g.callback_outcome = "kept"
    timeline.record(services(), job_id, "callback", outcome="kept", bfl_status=report.status)
    log.info("callback kept until the submission is recorded",
             extra={"job_id": job_id, "bfl_id": report.bfl_id, "outcome": outcome})
    return {"ok": True, "outcome": outcome or "kept_until_submitted"}, 202


@bp.post("/bfl/<token>")
def job_callback(token: str):
    """A callback on the URL minted for one job."""
    svc = services()
    # The token before the body: a URL fluxhook did not issue is refused without reading a byte of it
    # (the web worker hands such a request on before its body arrives: refused_before_body).
    job_id = signing.job_id_from_webhook_token(svc.config.secret_keys, token)
    if job_id is None:
        _refuse("bad_token", Unauthorized("this callback URL is not one fluxhook issued"))
    try:
        body = _raw_body()
    except PayloadTooLarge as exc:
        _refuse_on_job(job_id, exc.code, exc)
    try:
        # The secrets derive from the job id alone: checked before Redis is asked anything.
        proven = verify_callback(request.headers, body, signing.job_webhook_secrets(svc.config.secret_keys, job_id),
                                 required=svc.config.webhook_require_secret)
    except Unauthorized as exc:
        if svc.jobs.get(job_id) is None:
            raise Gone("this job no longer exists") from None
        g.job_id = job_id
        _refuse("bad_secret", exc)
    g.job_id = job_id
    try:
        report = parse_callback(body)
    except InvalidRequest as exc:
        g.pop("job_id")
        _refuse_on_job(job_id, exc.code, exc)
    outcome = _apply(job_id, report, proven)
    if outcome == Outcome.GONE:
        raise Gone("this job no longer exists")
    if outcome == Outcome.NOT_SUBMITTED:
        return _keep_until_submitted(job_id, report, body, proven)
    if outcome == Outcome.OTHER_TASK:
        _refuse("wrong_task", Unauthorized("this callback is for another task than this URL's job"))
    return _answer(job_id, report, outcome)


def _refuse_on_job(job_id: str, reason: str, exc: FluxhookError):
    """Refuse a callback on a job's own URL; on its timeline too while the job exists."""
    if services().jobs.get(job_id) is not None:
        g.job_id = job_id
    _refuse(reason, exc)


def refused_before_body(secret_keys, method: str, target: str) -> bool:
    """Whether the request (its method and request-target) is refused whatever its body: a callback
    on a URL fluxhook did not issue.

    The web worker asks this once a request's head is in, and hands such a request on at once
    instead of waiting for (and storing) a body nobody will read.
    """
    prefix = bp.url_prefix + "/bfl/"
    path = unquote(target.partition("?")[0])
    if method != "POST" or not path.startswith(prefix):
        return False
    token = path[len(prefix):]
    return "/" not in token and signing.job_id_from_webhook_token(secret_keys, token) is None


@bp.post("/bfl")
def static_callback():
    """A callback for a task submitted elsewhere with BFL_WEBHOOK_SECRET."""
    svc = services()
    body = _raw_body()
    try:
        verify_callback(request.headers, body, svc.config.webhook_secrets, required=True)
    except Unauthorized as exc:
        _refuse("bad_secret", exc)
    report = parse_callback(body)
    job = svc.jobs.get_by_bfl_id(report.bfl_id)
    outcome = Outcome.GONE if job is None else _apply(job.id, report, proven=True)
    if outcome == Outcome.GONE:  # not tracked (yet): kept for when it is
        outcome = keep_callback(svc, report.bfl_id, body)
        g.callback_outcome = "kept"
        log.info("callback kept for an untracked task", extra={"bfl_id": report.bfl_id, "outcome": outcome})
        return {"ok": True, "outcome": outcome or "kept_until_tracked"}, 202
    return _answer(job.id, report, outcome)


