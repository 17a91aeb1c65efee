"""An account that failed a submission cools down: for every process at once, through Redis, so the
job and the others waiting go through another account they may use, or wait ``queued`` for its recovery."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from fluxhook import metrics
from fluxhook.core.accounts import NO_CREDITS_RECHECK, Account, CoolingReason, cooldown_seconds
from fluxhook.core.errors import BFLError, InsufficientCredits
from fluxhook.services import Services
from fluxhook.store.cooldowns import ACCOUNT_WIDE

log = logging.getLogger("fluxhook.cooling")


def cool_after(svc: Services, account: Account, error: BFLError) -> float:
    """Cool ``account`` after its ``error`` to a submission: a 402 until its balance reads above zero, anything
    else for BFL's Retry-After or a backoff growing with its failures in a row. Returns when it may recover."""
    now = time.time()
    if isinstance(error, InsufficientCredits):
        until = svc.store.cooldowns.cool(account.name, now + NO_CREDITS_RECHECK, CoolingReason.INSUFFICIENT_CREDITS,
                                         lasting=True)
    else:
        retry_after = getattr(error, "retry_after", None)
        running = svc.store.cooldowns.of(account.name, now)
        if running is not None and retry_after is None:
            # Refusals of submissions sent before it cooled: one failure, already counted.
            return running.until
        seconds = cooldown_seconds(retry_after, svc.slots.strike(ACCOUNT_WIDE, account.name))
        until = svc.store.cooldowns.cool(account.name, now + seconds, CoolingReason.UNAVAILABLE)
    metrics.count(svc, "fluxhook_account_cooldowns", account=account.name, reason=error.code)
    log.warning("BFL account cools down", extra={"account": account.name, "error": error.code,
                                                 "until": round(until - now, 1)})
    return until


def cool_for_the_day(svc: Services, account: Account) -> float:
    """The account's own ``daily_credit_limit`` is spent: it takes no task until the next UTC day."""
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = svc.store.cooldowns.cool(account.name, tomorrow.timestamp(), CoolingReason.DAILY_CREDITS)
    log.info("BFL account's daily credits are spent", extra={"account": account.name})
    return until
