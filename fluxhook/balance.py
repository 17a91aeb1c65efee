"""The account's balance of BFL credits: asked of BFL (``GET /v1/credits``) every few minutes by a worker
and kept in Redis, for ``/metrics`` (``fluxhook_bfl_credits``), the dashboard and ``fluxhook doctor``.

Every worker's clock queues the refresh each ``BFL_CREDITS_REFRESH_SECONDS``; only the one that takes
the refresh lock asks BFL. The lock is held a little less than the interval (``lock_seconds``), so a run
that starts slightly early (a queue's delay on the previous one) still finds it free, while a second
worker's run within the same interval does not. So BFL is asked about once per interval, whatever the
number of workers, and one that fails is not retried before the next interval.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from fluxhook.bfl.client import BFLClient
from fluxhook.errors import FluxhookError
from fluxhook.services import Services

log = logging.getLogger("fluxhook.balance")

# A balance not refreshed for this many intervals (at least an hour) is forgotten: no figure beats a stale one.
KEEP_INTERVALS = 10
MIN_KEEP = 3600

# The refresh lock lasts this share of the interval: runs queued every interval start a little late
# or early by the queue's delay, and an exact TTL would make an early one skip a whole interval.
LOCK_SHARE = 0.9

REFRESHED, SKIPPED, FAILED = "refreshed", "skipped", "failed"


def lock_seconds(interval: float) -> float:
    """How long the refresh lock is held: a little under the interval, so no run finds it still held."""
    return interval * LOCK_SHARE


def refresh(svc: Services, now: float | None = None) -> str:
    """Ask BFL for the balance and keep it, unless another worker did within the interval."""
    interval = svc.config.bfl_credits_refresh_seconds
    if not svc.config.bfl_api_key:
        return SKIPPED  # BFL would refuse: there is no account to ask about
    if not svc.store.usage.claim_refresh(f"{socket.gethostname()}:{os.getpid()}", lock_seconds(interval)):
        return SKIPPED
    try:
        # One attempt: the next interval is the retry, and a slow BFL must not hold a worker long.
        credits = BFLClient(svc.config, svc.http, attempts=1).credits()
    except FluxhookError as exc:
        log.warning("BFL's credits could not be read", extra={"error": exc.message})
        return FAILED
    svc.store.usage.set_balance(credits, time.time() if now is None else now,
                                ttl=max(MIN_KEEP, KEEP_INTERVALS * interval))
    log.info("BFL credits refreshed", extra={"credits": credits})
    return REFRESHED
