"""Each account's balance of BFL credits: asked of BFL (``GET /v1/credits``) every few minutes by a worker, and
by ``fluxhook doctor`` whenever it runs, and kept in Redis as the account's one reading (the credits and when they
were read). Every view shows that reading: ``/metrics`` (``fluxhook_bfl_credits``), the dashboard, ``fluxhook
accounts`` and ``fluxhook credits``, ``GET /v1/accounts`` and ``GET /v1/credits``.

Every worker's clock queues the refresh ``CHECKS_PER_INTERVAL`` times per ``BFL_CREDITS_REFRESH_SECONDS``;
only a run that takes the refresh lock, held for the whole interval, asks BFL. So BFL is asked at most
once per interval whatever the number of workers, and at most a fraction of an interval late (a run
that comes a moment before the lock lapses finds it held, and the next check takes it). One that
fails is not retried before the next interval.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Iterable

from fluxhook.bfl.client import BFLClient
from fluxhook.core.accounts import NO_CREDITS_RECHECK, Account, CoolingReason
from fluxhook.core.errors import FluxhookError
from fluxhook.core.outcomes import RefreshOutcome
from fluxhook.services import Services
from fluxhook.store.usage import Balance

log = logging.getLogger("fluxhook.balance")

# A balance not refreshed for this many intervals (at least an hour) is forgotten: no figure beats a stale one.
KEEP_INTERVALS = 10
MIN_KEEP = 3600

# How often a worker's clock checks whether the interval has passed (see the module's docstring).
CHECKS_PER_INTERVAL = 5


def kept(svc: Services, accounts: Iterable[Account] | None = None) -> dict[str, Balance | None]:
    """Each account's balance as a worker last read it (None: not read lately), by name: every configured account's,
    or ``accounts``'. Never one of an account no longer configured, whatever Redis still keeps of it."""
    return {account.name: svc.store.usage.balance(account=account.name)
            for account in (svc.config.accounts if accounts is None else accounts)}


def together(balances: Iterable[Balance | None]) -> Balance | None:
    """Several accounts' credits added up, read when the oldest of them was; None unless every one is known (a sum
    short of an account would be no account's balance)."""
    given = list(balances)
    known = [balance for balance in given if balance is not None]
    if not known or len(known) < len(given):
        return None
    return Balance(sum(b.credits for b in known), min(b.at for b in known))


def read(svc: Services, account: Account, now: float | None = None) -> Balance:
    """Ask BFL for ``account``'s credits now, once (FluxhookError when it does not answer). ``keep`` makes the
    answer the account's reading."""
    at = time.time() if now is None else now
    # One attempt: the next interval is the retry, and a slow BFL must not hold a worker (or the doctor) long.
    return Balance(BFLClient(svc.config, svc.http, attempts=1, account=account).credits(), at)


def keep(svc: Services, account: Account, reading: Balance) -> None:
    """Keep ``reading`` as ``account``'s balance, where every view reads it (a later reading kept meanwhile stays);
    one above zero ends a cooldown for want of credits."""
    svc.store.usage.set_balance(reading.credits, reading.at, account=account.name,
                                ttl=max(MIN_KEEP, KEEP_INTERVALS * svc.config.bfl_credits_refresh_seconds))
    cooling = svc.store.cooldowns.of(account.name, reading.at) if reading.credits > 0 else None
    if cooling is not None and cooling.reason == CoolingReason.INSUFFICIENT_CREDITS \
            and svc.store.cooldowns.lift(account.name, CoolingReason.INSUFFICIENT_CREDITS, reading.at):
        log.info("BFL account has credits again", extra={"account": account.name, "credits": reading.credits})
    log.info("BFL credits read", extra={"account": account.name, "credits": reading.credits})


def check_every(interval: int, several_accounts: bool = False) -> int:
    """Seconds between a worker's checks of the refresh lock: a fraction of the interval, at least one; with several
    accounts, often enough to see one that ran out of credits have some again within ``NO_CREDITS_RECHECK``."""
    every = max(1, interval // CHECKS_PER_INTERVAL)
    return min(every, max(1, int(NO_CREDITS_RECHECK) // CHECKS_PER_INTERVAL)) if several_accounts else every


def refresh(svc: Services, now: float | None = None) -> RefreshOutcome:
    """Ask BFL for each account's balance and keep it, unless another worker did within the interval (for an
    account cooling down after a 402, within ``NO_CREDITS_RECHECK``: its cooldown ends once the balance reads above
    zero). REFRESHED if any account's was read, FAILED if every one asked failed, else SKIPPED."""
    outcomes = [_refresh_account(svc, account, time.time() if now is None else now) for account in svc.config.accounts]
    for outcome in (RefreshOutcome.REFRESHED, RefreshOutcome.FAILED):
        if outcome in outcomes:
            return outcome
    return RefreshOutcome.SKIPPED


def _refresh_account(svc: Services, account: Account, now: float) -> RefreshOutcome:
    if not account.api_key:
        return RefreshOutcome.SKIPPED  # BFL would refuse: there is no account to ask about
    cooling = svc.store.cooldowns.of(account.name, now)
    broke = cooling is not None and cooling.reason == CoolingReason.INSUFFICIENT_CREDITS
    interval = min(NO_CREDITS_RECHECK, svc.config.bfl_credits_refresh_seconds) if broke \
        else svc.config.bfl_credits_refresh_seconds
    # Its own lock while it has no credits: the refresh's, held for the whole interval, must not delay its recovery.
    lock = svc.store.keys.recheck_lock(account.name) if broke else svc.store.keys.balance_lock(account.name)
    if not svc.store.locks.acquire(lock, f"{socket.gethostname()}:{os.getpid()}", int(interval)):
        return RefreshOutcome.SKIPPED
    try:
        reading = read(svc, account, now)
    except FluxhookError as exc:
        log.warning("BFL's credits could not be read", extra={"account": account.name, "error": exc.message})
        return RefreshOutcome.FAILED
    keep(svc, account, reading)
    if broke and reading.credits <= 0:
        svc.store.cooldowns.cool(account.name, now + interval, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    return RefreshOutcome.REFRESHED
