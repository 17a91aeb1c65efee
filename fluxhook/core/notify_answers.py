"""What a receiver's answer to a notification means, and when the next attempt goes (pure; docs/api.md).

``2xx`` delivers; ``410 Gone`` disables the target for the job's key; ``408``, ``429``, ``5xx``, a timeout or a
connection error are tried again, up to ``NOTIFY_RETRIES`` times, the n-th after a uniform draw in [d/2, d] with
d = min(``NOTIFY_RETRY_CAP``, 2^n) s (1-2, 2-4, 4-8 s... then 15-30 minute steps: 62 to 124 minutes in all);
``429`` and ``503`` with ``Retry-After`` wait at least that long (at most ``MAX_RETRY_AFTER``). Anything else
(a redirect, another ``4xx``) is the app refusing the message: it is not sent again.
"""

from __future__ import annotations

import random

from fluxhook.core.backoff import backoff_delay, retry_after_seconds
from fluxhook.core.outcomes import DeliveryOutcome

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
