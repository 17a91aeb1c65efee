"""What a notification is (pure): where it may go, what it may be of, and what a receiver's answer to it means.

Where: a notify URL is a string of at most ``MAX_NOTIFY_URL`` printable ASCII characters without spaces (as sent, so
percent-encoded), starting ``http://`` or ``https://``, whose host ``NOTIFY_HOST_ALLOWLIST`` covers
(``hosts.check_url``: https on port 443 at public addresses, or an exact ``host:port`` listed): the one rule for
``NOTIFY_URL``, a job's ``notify_url`` and an app's ``webhook_url`` on the BFL-compatible API, each caller wording a
refusal its own way (``Wording``).

What of: ``job.ended`` goes to every target, asked or not; ``job.submitted`` and ``job.progress`` only where a job's
or its key's ``notify_events`` names them (a job's own list, when it has one, else its key's).

The answer (docs/api.md): ``2xx`` delivers; ``410 Gone`` disables the target for the job's key; ``408``, ``429``,
``5xx``, a timeout or a connection error are tried again, up to ``NOTIFY_RETRIES`` times, the n-th after a uniform
draw in [d/2, d] with d = min(``NOTIFY_RETRY_CAP``, 2^n) s (1-2, 2-4, 4-8 s... then 15-30 minute steps: 62 to 124
minutes in all); ``429`` and ``503`` with ``Retry-After`` wait at least that long (at most ``MAX_RETRY_AFTER``).
Anything else (a redirect, another ``4xx``) is the app refusing the message: it is not sent again.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from fluxhook.core.backoff import backoff_delay, retry_after_seconds
from fluxhook.core.errors import HostNotAllowed, InvalidRequest
from fluxhook.core.hosts import HostPattern, check_url
from fluxhook.core.outcomes import DeliveryOutcome

# --- Where a notification may go ---

MAX_NOTIFY_URL = 2048
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Wording:
    """A caller's words for a refused URL: ``malformed`` (not a string of printable ASCII starting http:// or
    https://), ``too_long`` (over ``MAX_NOTIFY_URL`` characters) and ``not_allowed``, where ``{reason}`` stands
    for why the allowlist refuses it."""

    malformed: str
    too_long: str
    not_allowed: str


def field_wording(field: str) -> Wording:
    """The API's words for a URL sent in the request's field ``field`` (``notify_url``, ``webhook_url``)."""
    malformed = f"'{field}' must be an http(s) URL of at most {MAX_NOTIFY_URL} characters"
    return Wording(malformed=malformed, too_long=malformed,
                   not_allowed=f"'{field}' is not allowed: {{reason}} (NOTIFY_HOST_ALLOWLIST)")


def check_form(value: object, wording: Wording) -> str:
    """``value``, if it has a notify URL's form (whatever its host); InvalidRequest in ``wording`` otherwise.

    The first half of ``check_notify_url``, for a caller that checks something else before the host.
    """
    if not isinstance(value, str):
        raise InvalidRequest(wording.malformed)
    if len(value) > MAX_NOTIFY_URL:
        raise InvalidRequest(wording.too_long)
    if not _PRINTABLE.fullmatch(value) or not value.startswith(("https://", "http://")):
        raise InvalidRequest(wording.malformed)
    return value


def check_notify_url(value: object, allowlist: tuple[HostPattern, ...], wording: Wording) -> str:
    """``value``, if fluxhook may notify it: a notify URL's form (``check_form``) on a host ``allowlist`` covers.

    Raises InvalidRequest in ``wording`` otherwise.
    """
    url = check_form(value, wording)
    try:
        check_url(url, allowlist)
    except HostNotAllowed as exc:
        raise InvalidRequest(wording.not_allowed.format(reason=exc.message)) from None
    return url


# --- What a notification may be of ---

SUBMITTED, PROGRESS, ENDED = "job.submitted", "job.progress", "job.ended"
EVENTS = (SUBMITTED, PROGRESS, ENDED)
# What a target asks for beyond the end, kept on the job and the key.
OPTIONAL = (SUBMITTED, PROGRESS)
# At most one job.progress per job this often (seconds): a job reporting progress every second is not a message each.
PROGRESS_GAP = 5.0


def parse_events(value: object, field: str = "notify_events") -> tuple[str, ...]:
    """The optional events ``value`` asks for (a list of event names; ``job.ended`` is always sent), in ``EVENTS``'
    order; InvalidRequest naming ``field`` for anything else."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v in EVENTS for v in value):
        raise InvalidRequest(f"'{field}' must be a list of event names: {', '.join(EVENTS)}")
    return tuple(event for event in OPTIONAL if event in value)


def wanted(job_events: tuple[str, ...] | None, key_events: tuple[str, ...] | None) -> tuple[str, ...]:
    """The optional events a job's notifications carry: its own list when it has one, else its key's."""
    return tuple(job_events if job_events is not None else key_events or ())


# A batch's end: sent to its notify_url whatever its notify_events say.
BATCH_ENDED = "batch.ended"
BATCH_EVENTS = (BATCH_ENDED, *EVENTS)


def parse_batch_events(value: object) -> tuple[str, ...]:
    """The ``job.*`` events a batch's ``notify_events`` asks its items' messages for (none: its items send none), in
    ``EVENTS``' order; ``batch.ended`` is always sent. InvalidRequest for anything else."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v in BATCH_EVENTS for v in value):
        raise InvalidRequest(f"'notify_events' of a batch must be a list of event names: {', '.join(BATCH_EVENTS)}")
    return tuple(event for event in EVENTS if event in value)


# --- What a receiver's answer means ---

NOTIFY_RETRIES = 13
NOTIFY_RETRY_CAP = 1800.0
MAX_RETRY_AFTER = 1800.0
_SLOW_DOWN = (429, 503)


def outcome_for(status_code: int) -> DeliveryOutcome:
    """What an HTTP answer means for the message."""
    if 200 <= status_code < 300:
        return DeliveryOutcome.DELIVERED
    if status_code == 410:
        return DeliveryOutcome.DISABLED
    if status_code in (408, 429) or status_code >= 500:
        return DeliveryOutcome.RETRY
    return DeliveryOutcome.REJECTED


def next_delay(tries: int, status_code: int | None = None, retry_after: str | None = None,
               rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt of a message whose ``tries``-th attempt (1-based) was answered
    ``status_code`` (None: no answer) with ``retry_after``; None once its retries are used up."""
    if tries > NOTIFY_RETRIES:
        return None
    delay = backoff_delay(tries, base=2, cap=NOTIFY_RETRY_CAP, rng=rng)
    if status_code in _SLOW_DOWN and retry_after:
        delay = max(delay, retry_after_seconds(retry_after, 0.0, cap=MAX_RETRY_AFTER))
    return delay
