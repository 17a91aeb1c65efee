"""Notifications to the user's app: the job JSON POSTed to its ``notify_url`` once the job is terminal.

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
import re
import time
from datetime import datetime, timezone

import requests
from standardwebhooks import Webhook

from fluxhook import metrics
from fluxhook.config import MAX_NOTIFY_URL, Config
from fluxhook.errors import HostNotAllowed, InvalidRequest, RetryableError
from fluxhook.lifecycle.presenting import present
from fluxhook.net.hosts import check_url
from fluxhook.outcomes import Outcome
from fluxhook.services import Services

log = logging.getLogger("fluxhook.notifications")

METRIC = "fluxhook_notifications"
# (connect, read) seconds for one POST: the user's app answers an acknowledgement, not the work.
NOTIFY_TIMEOUT = (5.0, 15.0)

_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def message_id(job_id: str) -> str:
    """The ``webhook-id`` of a job's notification: stable, so every retry carries the same one."""
    return f"msg_{job_id}"


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value, ``v1,<base64>``, by the Standard Webhooks reference library."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, timezone.utc), body)


def signed_headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def payload(config: Config, job) -> str:
    """The body: the job JSON, exactly what ``GET /v1/jobs/{id}`` answers."""
    return json.dumps(present(config, job), separators=(",", ":"), ensure_ascii=False)


def outcome_for(status_code: int) -> Outcome:
    """What an answer means: delivered (2xx), worth retrying (408, 429, 5xx), or refused for good."""
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code in (408, 429) or status_code >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


def requested_url(value: object, config: Config) -> str | None:
    """The notify_url to store on a new job: the request's own (validated), else ``NOTIFY_URL``, else None.

    Raises InvalidRequest for a URL that is not http(s), too long, outside ``NOTIFY_HOST_ALLOWLIST``,
    or when no ``NOTIFY_SECRET`` is set to sign with.
    """
    if value is None:
        return config.notify_url
    if (not isinstance(value, str) or len(value) > MAX_NOTIFY_URL or not _PRINTABLE.fullmatch(value)
            or not value.startswith(("https://", "http://"))):
        raise InvalidRequest(f"'notify_url' must be an http(s) URL of at most {MAX_NOTIFY_URL} characters")
    if not config.notify_secret:
        raise InvalidRequest("'notify_url' cannot be used: this service has no NOTIFY_SECRET to sign "
                             "notifications with (its operator must set one)")
    try:
        check_url(value, config.notify_host_allowlist)
    except HostNotAllowed as exc:
        raise InvalidRequest(f"'notify_url' is not allowed: {exc.message} (NOTIFY_HOST_ALLOWLIST)") from None
    return value


def deliver(svc: Services, job_id: str, *, last_attempt: bool, now: float | None = None) -> str:
    """POST the job's notification once; returns the outcome, or raises RetryableError for RQ to retry."""
    job = svc.jobs.get(job_id)
    if job is None or not job.notify_url or not job.terminal:
        return _record(svc, job_id, Outcome.SKIPPED, logging.INFO, "notification skipped: the job is gone")
    config = svc.config
    if not config.notify_secret:
        return _record(svc, job_id, Outcome.NOT_SIGNED, logging.ERROR, "notification not sent: NOTIFY_SECRET is not set")
    try:
        target = check_url(job.notify_url, config.notify_host_allowlist)
        session = svc.http.session_for(target)
    except HostNotAllowed as exc:
        return _record(svc, job_id, Outcome.HOST_NOT_ALLOWED, logging.WARNING, "notification not sent", reason=exc.message)
    host = f"{target.host}:{target.port}"  # never the URL: its path or query may hold the app's own token
    body = payload(config, job)
    timestamp = int(time.time() if now is None else now)
    headers = signed_headers(config.notify_secret, message_id(job.id), timestamp, body)
    try:
        response = session.post(target.url, data=body.encode(), headers=headers, timeout=NOTIFY_TIMEOUT,
                                allow_redirects=False, stream=True)
        response.close()  # the answer's body is not needed: its status says it all
    except HostNotAllowed as exc:
        return _record(svc, job_id, Outcome.HOST_NOT_ALLOWED, logging.WARNING, "notification not sent",
                       host=host, reason=exc.message)
    except requests.RequestException as exc:
        return _again(svc, job_id, host, type(exc).__name__, last_attempt)
    outcome = outcome_for(response.status_code)
    if outcome == Outcome.DELIVERED:
        svc.jobs.mark_notified(job.id, time.time())
        return _record(svc, job_id, Outcome.DELIVERED, logging.INFO, "notification delivered", host=host,
                       http_status=response.status_code)
    if outcome == Outcome.REJECTED:
        return _record(svc, job_id, Outcome.REJECTED, logging.WARNING, "notification refused by the app; not sent again",
                       host=host, http_status=response.status_code)
    return _again(svc, job_id, host, f"HTTP {response.status_code}", last_attempt)


def _again(svc: Services, job_id: str, host: str, reason: str, last_attempt: bool) -> str:
    if last_attempt:
        return _record(svc, job_id, Outcome.EXHAUSTED, logging.WARNING, "notification abandoned after its retries",
                       host=host, reason=reason)
    _record(svc, job_id, Outcome.RETRY, logging.INFO, "notification failed; retrying later", host=host, reason=reason)
    raise RetryableError(f"notification to {host} not delivered: {reason}", code="notify_unavailable")


def _record(svc: Services, job_id: str, outcome: str, level: int, event: str, **fields) -> str:
    metrics.count(svc, METRIC, outcome=outcome)
    log.log(level, event, extra={"job_id": job_id, "outcome": outcome, **fields})
    return outcome
