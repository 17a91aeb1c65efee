"""One attempt of one notification message: sent to its target, kept with its answer, and what the answer
means done: delivered, tried again later (at least as late as a ``Retry-After`` asks), failed past its last retry,
or its target disabled by a ``410 Gone``.

Signed the Standard Webhooks way (https://www.standardwebhooks.com): ``webhook-id`` (the message's id, the same
on every attempt and replay, so the receiver can drop repeats), ``webhook-timestamp`` (the attempt's time, in
seconds) and ``webhook-signature``, one ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` per secret of the
job's key (``notify_secrets``; two for a day after a rotation). A message of the BFL-compatible API's own webhook
carries BFL's body and the app's own secret instead (``app_webhooks``).

An attempt is one exchange under one deadline, ``ATTEMPT_DEADLINE``: connecting, sending and the receiver's whole
answer, however it trickles (``net.deadlines``); one past it is a timeout, tried again like any other. An answer
other than ``2xx`` is an expected event, logged as one WARNING line with its status (no exception, no traceback), and
the message's next attempt waits in ``notify_due`` for its turn like a first one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from fluxhook import metrics
from fluxhook.core import tracing
from fluxhook.core.errors import HostNotAllowed
from fluxhook.core.holds import ATTEMPT_DEADLINE
from fluxhook.core.hosts import check_url
from fluxhook.core.notify_rules import BATCH_ENDED, ENDED, next_delay, outcome_for
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle.notifications import batch_payload, payload, signed_headers, target_url
from fluxhook.lifecycle.steps import app_webhooks, notify_secrets
from fluxhook.net.deadlines import DeadlinePassed, within
from fluxhook.services import Services
from fluxhook.store.deliveries import BFL, DELIVERED, DISABLED, FAILED, PENDING, Attempt, Message, member_message
from fluxhook.store.owners import ADMIN_OWNER

log = logging.getLogger("fluxhook.notifications")

METRIC = "fluxhook_notifications"
# One attempt's whole exchange is bounded by ``holds.ATTEMPT_DEADLINE``: the app answers an acknowledgement,
# not the work. Its connect alone gives up sooner, so an unreachable host is told apart.
CONNECT_TIMEOUT = 5.0


def deliver(svc: Services, attempt: Attempt) -> str:
    """Make ``attempt``, taken for the caller (``notifications.due_attempts``), if its message is still pending; its
    outcome (``DeliveryOutcome``). Every way out ends it (``Deliveries.record``, ``set_state``, ``finish``), showing
    its lease: an attempt that outlived it, its message taken again meanwhile, changes nothing of the newer attempt's
    (its answer is kept, and a 2xx marks the message delivered; any other is the newer attempt's to settle)."""
    store = svc.store.deliveries
    message = store.get(member_message(attempt.member))
    subject = _subject(svc, message) if message is not None and message.state == PENDING else None
    if message is None or subject is None:
        store.finish(attempt)
        return _count(svc, DeliveryOutcome.SKIPPED)
    if store.is_disabled(message.owner, message.target):
        store.set_state(attempt, DISABLED)
        return _note(svc, message, DeliveryOutcome.DISABLED, logging.INFO, "notification not sent: its target is "
                     "disabled (a 410 answered it; enable it with POST /v1/keys/{id}/notify/enable)")
    at = time.time()
    made = subject.request(at)
    if made is None:
        store.record(attempt, message, (at, None, "not_signed", 0), FAILED, None)
        return _note(svc, message, DeliveryOutcome.NOT_SIGNED, logging.ERROR,
                     "notification not sent: no secret to sign it with (NOTIFY_SECRET, or its app key's)")
    with tracing.job_span("fluxhook.notify", subject.id, subject.traceparent):  # its log lines carry its trace
        return _send(svc, attempt, message, at, subject.url or "", *made)


@dataclass(frozen=True)
class _Subject:
    """What a message tells of, as its attempt finds it: a job, or a batch (``batch.ended``, docs/api.md)."""

    id: str
    url: str | None
    traceparent: str | None
    # The attempt's body and headers at a time; None when there is nothing to sign or seal it with.
    request: Callable[[float], tuple[str, dict[str, str]] | None]


def _subject(svc: Services, message: Message) -> _Subject | None:
    """The job or batch the message tells of, as it is now; None if it is gone."""
    if message.event == BATCH_ENDED:
        batch = svc.store.batches.get(message.job_id)
        if batch is None:
            return None
        return _Subject(batch.id, batch.notify_url, None,
                        lambda at: _signed(svc, message, at, batch_payload(batch, message.created_at)))
    job = svc.jobs.get(message.job_id)
    if job is None:
        return None
    return _Subject(job.id, target_url(job, message.kind), job.traceparent, lambda at: _request(svc, message, job, at))


def _send(svc: Services, attempt: Attempt, message: Message, at: float, url: str, body: str,
          headers: dict[str, str]) -> str:
    """POST the attempt to ``url`` and do what its answer means."""
    store = svc.store.deliveries
    started = time.monotonic()
    try:
        target = check_url(url, svc.config.notify_host_allowlist)
        session = svc.http.session_for(target)
        # Connection: close, so each attempt is a connection of its own that its deadline can end, and no receiver
        # keeps one open between attempts. The answer's body is read and dropped: its status and headers say it all,
        # but a receiver that trickles it is held to the deadline like one that trickles its head.
        with within(ATTEMPT_DEADLINE):
            response = session.post(target.url, data=body.encode(), headers={**headers, "Connection": "close"},
                                    timeout=(CONNECT_TIMEOUT, ATTEMPT_DEADLINE), allow_redirects=False, stream=True)
            with response:
                for _ in response.iter_content(64 * 1024):
                    pass
    except HostNotAllowed as exc:
        store.record(attempt, message, (at, None, "host_not_allowed", _ms(started)), FAILED, None)
        return _note(svc, message, DeliveryOutcome.HOST_NOT_ALLOWED, logging.WARNING, "notification not sent",
                     reason=exc.message)
    except DeadlinePassed:
        return _retry(svc, attempt, message, at, None, None, f"no whole answer within {ATTEMPT_DEADLINE:g} s", _ms(started))
    except requests.RequestException as exc:
        return _retry(svc, attempt, message, at, None, None, type(exc).__name__, _ms(started))
    status, ms = response.status_code, _ms(started)
    outcome = outcome_for(status)
    if outcome == DeliveryOutcome.DELIVERED:
        store.record(attempt, message, (at, status, None, ms), DELIVERED, None)
        if message.event == ENDED:
            (svc.jobs.mark_app_notified if message.kind == BFL else svc.jobs.mark_notified)(message.job_id, time.time())
        return _note(svc, message, outcome, logging.INFO, "notification delivered", http_status=status, ms=ms)
    if outcome == DeliveryOutcome.DISABLED:
        store.disable(message.owner, message.target)
        store.record(attempt, message, (at, status, None, ms), DISABLED, None)
        return _note(svc, message, outcome, logging.WARNING, "notification answered 410: target disabled",
                     http_status=status)
    if outcome == DeliveryOutcome.REJECTED:
        store.record(attempt, message, (at, status, None, ms), FAILED, None)
        return _note(svc, message, outcome, logging.WARNING, f"notification refused by the app (HTTP {status}); "
                     "not sent again", http_status=status)
    return _retry(svc, attempt, message, at, status, response.headers.get("Retry-After"), None, ms)


def _request(svc: Services, message: Message, job, at: float) -> tuple[str, dict[str, str]] | None:
    """The body and headers of this attempt; None when there is nothing to sign or seal it with."""
    if message.kind == BFL:
        return app_webhooks.request_for(svc.config, job, at)
    return _signed(svc, message, at, payload(svc.config, job, message.event, message.created_at))


def _signed(svc: Services, message: Message, at: float, body: str) -> tuple[str, dict[str, str]] | None:
    """``body`` with the headers that sign it with its key's secrets; None when there are none."""
    key_id = None if message.owner == ADMIN_OWNER else message.owner
    secrets = notify_secrets.signing_secrets(svc, key_id, at)
    if not secrets:
        return None
    return body, signed_headers(secrets, message.id, int(at), body)


def _retry(svc: Services, attempt: Attempt, message: Message, at: float, status: int | None, retry_after: str | None,
           error: str | None, ms: int) -> str:
    """A retryable answer: the next attempt scheduled, or the message failed past its last retry."""
    delay = next_delay(message.tries + 1, status, retry_after)
    what = f"HTTP {status}" if status is not None else error
    if delay is None:
        svc.store.deliveries.record(attempt, message, (at, status, error, ms), FAILED, None)
        return _note(svc, message, DeliveryOutcome.EXHAUSTED, logging.WARNING,
                     f"notification failed after its last retry ({what})", http_status=status, error=error)
    svc.store.deliveries.record(attempt, message, (at, status, error, ms), PENDING, time.time() + delay)
    return _note(svc, message, DeliveryOutcome.RETRY, logging.WARNING,
                 f"notification not delivered ({what}); next attempt in {delay:.0f} s", http_status=status,
                 error=error, retry_in=round(delay, 1))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _count(svc: Services, outcome: str) -> str:
    metrics.count(svc, METRIC, outcome=outcome)
    return outcome


def _note(svc: Services, message: Message, outcome: str, level: int, event: str, **fields) -> str:
    """Count the outcome and log it as one line: the job, the message, the host, never the URL or a secret."""
    log.log(level, event, extra={"job_id": message.job_id, "message_id": message.id, "event_type": message.event,
                                 "host": message.host, "outcome": outcome,
                                 **{k: v for k, v in fields.items() if v is not None}})
    return _count(svc, outcome)
