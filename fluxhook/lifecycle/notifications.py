"""Notifications to the user's app: the job JSON POSTed to its ``notify_url`` once the job is terminal (and,
for a job made through the BFL-compatible API, BFL's callback to the app's own webhook: ``app_webhooks``).

Signed the Standard Webhooks way (https://www.standardwebhooks.com): ``webhook-id`` (``msg_{job id}``,
the same on every attempt, so the receiver can drop repeats), ``webhook-timestamp`` (the attempt's
time, in seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
with the key in ``NOTIFY_SECRET`` (``whsec_`` + base64). At least once: the job enters the outbox in
the script that makes it terminal (``jobs``), the sweep turns the outbox into one RQ task per job
(``sweep``), and the task retries for over an hour (``queue.notify_retry``).

The body is made at each attempt, so a retry an hour later still carries a valid signed
``image.url``; the job itself, being terminal, no longer changes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import requests
from standardwebhooks import Webhook

from fluxhook import metrics
from fluxhook.core import tracing
from fluxhook.core.config import Config
from fluxhook.core.errors import HostNotAllowed, InvalidRequest, RetryableError
from fluxhook.core.hosts import check_url
from fluxhook.core.notify_urls import check_form, check_notify_url, field_wording
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle.steps import app_webhooks, notify_secrets
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.services import Services
from fluxhook.store.app_keys import AppKey

log = logging.getLogger("fluxhook.notifications")

METRIC = "fluxhook_notifications"
# (connect, read) seconds for one POST: the user's app answers an acknowledgement, not the work.
NOTIFY_TIMEOUT = (5.0, 15.0)
_URL_WORDING = field_wording("notify_url")


@dataclass(frozen=True)
class Call:
    """One call to the app: what it is (as logged), where it goes, its body and signed headers, and how its
    delivery is recorded (``mark(job_id, when)``)."""

    what: str
    url: str
    body: str
    headers: dict[str, str]
    mark: Callable[[str, float], bool]


def message_id(job_id: str) -> str:
    """The ``webhook-id`` of a job's notification: stable, so every retry carries the same one."""
    return f"msg_{job_id}"


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value, ``v1,<base64>``, by the Standard Webhooks reference library."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, timezone.utc), body)


def signed_headers(secrets: list[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt: one signature per secret, space-separated (a rotation's day carries two)."""
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets),
    }


def payload(config: Config, job) -> str:
    """The body: the job JSON, exactly what ``GET /v1/jobs/{id}`` answers."""
    return json.dumps(present(config, job), separators=(",", ":"), ensure_ascii=False)


def outcome_for(status_code: int) -> DeliveryOutcome:
    """What an answer means: delivered (2xx), worth retrying (408, 429, 5xx), or refused for good."""
    if 200 <= status_code < 300:
        return DeliveryOutcome.DELIVERED
    if status_code in (408, 429) or status_code >= 500:
        return DeliveryOutcome.RETRY
    return DeliveryOutcome.REJECTED


def requested_url(value: object, config: Config, key: AppKey | None = None) -> str | None:
    """The notify_url to store on a new job of app key ``key`` (None: an admin token's): the request's own
    (validated), else the key's, else ``NOTIFY_URL``, else None.

    Raises InvalidRequest for a URL that is not http(s), too long, outside ``NOTIFY_HOST_ALLOWLIST``,
    or, for an admin token's job, when no ``NOTIFY_SECRET`` is set to sign with (a key signs with its own).
    """
    if value is None:
        return (key.notify_url if key is not None else None) or config.notify_url
    check_form(value, _URL_WORDING)  # a malformed URL is named before a missing secret
    if key is None and not config.notify_secret:
        raise InvalidRequest("'notify_url' cannot be used: this service has no NOTIFY_SECRET to sign "
                             "notifications with (its operator must set one)")
    return check_notify_url(value, config.notify_host_allowlist, _URL_WORDING)


def deliver(svc: Services, job_id: str, *, last_attempt: bool, now: float | None = None) -> str:
    """Send the job's calls not delivered yet: to its notify_url and to the app's own webhook (``app_webhooks``);
    returns the outcome (the first that is not ``delivered``), or raises RetryableError for RQ to retry."""
    job = svc.jobs.get(job_id)
    if job is None or not job.terminal or not (job.notify_url or job.app_webhook_url):
        return _record(svc, job_id, DeliveryOutcome.SKIPPED, logging.INFO, "notification skipped: the job is gone")
    outcomes, again = [], None
    with tracing.job_span("fluxhook.notify", job.id, job.traceparent):
        for send in (_notify, _app_webhook):
            try:
                outcome = send(svc, job, last_attempt, now)
            except RetryableError as exc:
                again = exc  # the other call still goes now; a retry sends only what is not delivered
                continue
            if outcome is not None:
                outcomes.append(outcome)
    if again is not None:
        raise again
    if not outcomes:
        return _record(svc, job_id, DeliveryOutcome.SKIPPED, logging.INFO, "notification skipped: already delivered")
    return next((o for o in outcomes if o != DeliveryOutcome.DELIVERED), DeliveryOutcome.DELIVERED)


def _notify(svc: Services, job, last_attempt: bool, now: float | None) -> str | None:
    """The job JSON to its notify_url, signed the Standard Webhooks way (None: nothing to send)."""
    if not job.notify_url or job.notified_at is not None:
        return None
    config = svc.config
    timestamp = int(time.time() if now is None else now)
    secrets = notify_secrets.signing_secrets(svc, job.key_id, timestamp)
    if not secrets:
        return _record(svc, job.id, DeliveryOutcome.NOT_SIGNED, logging.ERROR,
                       "notification not sent: no secret to sign it with (NOTIFY_SECRET, or its app key's)")
    body = payload(config, job)
    headers = signed_headers(secrets, message_id(job.id), timestamp, body)
    return _post(svc, job.id, Call("notification", job.notify_url, body, headers, svc.jobs.mark_notified), last_attempt)


def _app_webhook(svc: Services, job, last_attempt: bool, now: float | None) -> str | None:
    """BFL's callback to the webhook_url the app gave the BFL-compatible API (None: nothing to send)."""
    if not job.app_webhook_url or job.app_notified_at is not None:
        return None
    made = app_webhooks.request_for(svc.config, job, time.time() if now is None else now)
    if made is None:
        return _record(svc, job.id, DeliveryOutcome.NOT_SIGNED, logging.ERROR,
                       "app webhook not sent: its secret no longer opens with SECRET_KEY")
    body, headers = made
    call = Call("app webhook", job.app_webhook_url, body, headers, svc.jobs.mark_app_notified)
    return _post(svc, job.id, call, last_attempt)


def _post(svc: Services, job_id: str, call: Call, last_attempt: bool) -> str:
    """POST one call to the app once, to an allowed host; ``call.mark`` records its delivery."""
    what = call.what
    try:
        target = check_url(call.url, svc.config.notify_host_allowlist)
        session = svc.http.session_for(target)
    except HostNotAllowed as exc:
        return _record(svc, job_id, DeliveryOutcome.HOST_NOT_ALLOWED, logging.WARNING, f"{what} not sent",
                       reason=exc.message)
    host = f"{target.host}:{target.port}"  # never the URL: its path or query may hold the app's own token
    try:
        response = session.post(target.url, data=call.body.encode(), headers=call.headers, timeout=NOTIFY_TIMEOUT,
                                allow_redirects=False, stream=True)
        response.close()  # the answer's body is not needed: its status says it all
    except HostNotAllowed as exc:
        return _record(svc, job_id, DeliveryOutcome.HOST_NOT_ALLOWED, logging.WARNING, f"{what} not sent",
                       host=host, reason=exc.message)
    except requests.RequestException as exc:
        return _again(svc, job_id, host, type(exc).__name__, last_attempt, what)
    outcome = outcome_for(response.status_code)
    if outcome == DeliveryOutcome.DELIVERED:
        call.mark(job_id, time.time())
        return _record(svc, job_id, DeliveryOutcome.DELIVERED, logging.INFO, f"{what} delivered", host=host,
                       http_status=response.status_code)
    if outcome == DeliveryOutcome.REJECTED:
        return _record(svc, job_id, DeliveryOutcome.REJECTED, logging.WARNING, f"{what} refused by the app; not sent again",
                       host=host, http_status=response.status_code)
    return _again(svc, job_id, host, f"HTTP {response.status_code}", last_attempt, what)


def _again(svc: Services, job_id: str, host: str, reason: str, last_attempt: bool, what: str) -> str:
    if last_attempt:
        return _record(svc, job_id, DeliveryOutcome.EXHAUSTED, logging.WARNING, f"{what} abandoned after its retries",
                       host=host, reason=reason)
    _record(svc, job_id, DeliveryOutcome.RETRY, logging.INFO, f"{what} failed; retrying later", host=host, reason=reason)
    raise RetryableError(f"{what} to {host} not delivered: {reason}", code="notify_unavailable")


def _record(svc: Services, job_id: str, outcome: str, level: int, event: str, **fields) -> str:
    metrics.count(svc, METRIC, outcome=outcome)
    log.log(level, event, extra={"job_id": job_id, "outcome": outcome, **fields})
    return outcome
