"""Each account's balance of BFL credits: asked of BFL (``GET /v1/credits``) by a worker, and by ``fluxhook doctor``
whenever it runs, and kept in Redis as the account's one reading: the credits, when they were read, and the BFL they
were read from (``Account.bfl_digest``, its endpoint and key as a digest). Every view shows that reading: ``/metrics``
(``fluxhook_bfl_credits``), the dashboard, ``fluxhook accounts`` and ``fluxhook credits``, ``GET /v1/accounts`` and
``GET /v1/credits``. A reading of another BFL (kept before the account's endpoint or key changed: a restart on another
BFL) is no reading of the account's: no view shows it, and it is read again at a worker's first look (at the latest, its
next look at the interval), or as ``GET /v1/credits`` finds none.

Each worker process's balance thread looks every ``LOOK_EVERY`` s (``look``), and a worker asks BFL:

- every ``BFL_CREDITS_REFRESH_SECONDS``: the thread looks at the interval ``CHECKS_PER_INTERVAL`` times per interval
  (``check_every``), and only a look that takes the refresh lock, held for the whole interval, asks. So BFL is asked
  at most once per interval whatever the number of workers, and at most a fraction of an interval late. One that fails
  is not retried before the next interval.
- soon after the account's jobs end (docs/operating.md: within 30 s of the last one): the end of each job the account ran marks
  it, in the end's own step (``AccountJobEnded``, one ``HSET``); every look reads the marks (one command) and asks
  again once the account's last end is ``QUIET`` s old, so a burst of ends costs one read, or, while its jobs keep
  ending, once the first end not read is ``MAX_STALE`` s old.
- at once when a look finds the account has no reading (none kept, or another BFL's).

Either of the last two holds the account's re-read lock while it asks, so one process asks (a failed read holds it
``REREAD_LOCK`` s: tried again as it lapses), and counts as the interval's read.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

from fluxhook.bfl.client import BFLClient
from fluxhook.core.accounts import NO_CREDITS_RECHECK, Account, CoolingReason
from fluxhook.core.errors import FluxhookError
from fluxhook.core.holds import BALANCE_KEPT_AT_LEAST, BALANCE_KEPT_INTERVALS, REREAD_LOCK
from fluxhook.core.outcomes import RefreshOutcome
from fluxhook.services import Services
from fluxhook.store.usage import Balance

log = logging.getLogger("fluxhook.balance")


# How often a worker's clock checks whether the interval has passed (see the module's docstring).
CHECKS_PER_INTERVAL = 5

# An account's balance is read again once its last job's end is this old (a burst of ends costs one read)...
QUIET = 5.0
# How often a worker's balance thread looks for accounts whose jobs ended since their balance was read: a look more
# often than QUIET would find no end old enough that the look before had not found, while jobs end (two commands each).
LOOK_EVERY = QUIET
# ... or, while its jobs keep ending, once the first end not read is this old.
MAX_STALE = 20.0
# A re-read's lock (``holds.REREAD_LOCK``) is given back once the reading is kept: so a balance is read again within
# QUIET + LOOK_EVERY (10 s) of an account's last end, and the read's own time (one attempt, BFL's timeouts).


def kept(svc: Services, accounts: Iterable[Account] | None = None) -> dict[str, Balance | None]:
    """Each account's balance as a worker last read it (None: not read lately, or read from another BFL), by name: every
    configured account's, or ``accounts``'. Never one of an account no longer configured, whatever Redis still keeps of
    it. One round trip."""
    chosen = list(svc.config.accounts if accounts is None else accounts)
    return {account.name: reading for account, reading in zip(chosen, svc.store.usage.balances(chosen), strict=True)}


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
    svc.store.usage.set_balance(reading.credits, reading.at, account=account,
                                ttl=max(BALANCE_KEPT_AT_LEAST, BALANCE_KEPT_INTERVALS * svc.config.bfl_credits_refresh_seconds))
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


@dataclass
class Watch:
    """What one process's balance thread remembers from look to look: the reading of each account it last saw (its
    ``at``), and, for one out of date, since when this process has seen it so (the reading's ``at``, that time)."""

    seen: dict[str, float] = field(default_factory=dict)
    stale: dict[str, tuple[float, float]] = field(default_factory=dict)


def refresh(svc: Services, now: float | None = None) -> RefreshOutcome:
    """Ask BFL for each account's balance and keep it, unless another worker did within the interval (for an
    account cooling down after a 402, within ``NO_CREDITS_RECHECK``: its cooldown ends once the balance reads above
    zero); an account with no reading, or one out of date, as ``look`` does. REFRESHED if any account's was read,
    FAILED if every one asked failed, else SKIPPED."""
    return look(svc, Watch(), now, interval=True)


def look(svc: Services, watch: Watch, now: float | None = None, interval: bool = False) -> RefreshOutcome:
    """One look of a worker's balance thread (``watch``: its memory): ask BFL again for the balance of each account
    that has none, or whose jobs ended since it was read (``due``); with ``interval``, each other account's as the
    interval's refresh (``refresh``). Reads the accounts' last ends (one command), and the readings of those that may
    be due: every account's the first time and with ``interval``, else only of those with an end since the reading
    last seen (none at idle)."""
    now = time.time() if now is None else now
    ended = svc.store.usage.ended()
    # Without a key BFL would refuse: there is no account to ask about.
    asked = [account for account in svc.config.accounts if account.api_key and (
        interval or account.name not in watch.seen or ended.get(account.name, 0.0) > watch.seen[account.name])]
    outcomes = []
    for account, reading in zip(asked, svc.store.usage.balances(asked), strict=True):
        if due(watch, account.name, reading, ended.get(account.name), now):
            outcomes.append(_reread(svc, account))
        elif interval:
            outcomes.append(_refresh_account(svc, account, now))
    for outcome in (RefreshOutcome.REFRESHED, RefreshOutcome.FAILED):
        if outcome in outcomes:
            return outcome
    return RefreshOutcome.SKIPPED


def due(watch: Watch, name: str, reading: Balance | None, ended: float | None, now: float) -> bool:
    """Whether account ``name``'s balance is to be read again now: it has no reading (none kept, or another BFL's), or
    a job of it ended after its reading was taken, ``QUIET`` s ago, or the first such end this process saw is
    ``MAX_STALE`` s old. Notes in ``watch`` the reading seen."""
    if reading is None:
        watch.seen.pop(name, None)
        watch.stale.pop(name, None)
        return True
    watch.seen[name] = reading.at
    if ended is None or ended <= reading.at:
        watch.stale.pop(name, None)
        return False
    seen_at, since = watch.stale.get(name, (None, now))
    if seen_at != reading.at:  # this reading out of date since this look (a reading taken meanwhile was as well)
        since = now
        watch.stale[name] = (reading.at, since)
    return now - ended >= QUIET or now - since >= MAX_STALE


def _reread(svc: Services, account: Account) -> RefreshOutcome:
    """Ask BFL for ``account``'s balance now, unless another process is asking (its re-read lock: held while it asks,
    and ``REREAD_LOCK`` s after a read that failed); it counts as the interval's read (the refresh lock taken too, if
    free)."""
    holder, lock = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}", svc.store.keys.reread_lock(account.name)
    if not svc.store.locks.acquire(lock, holder, REREAD_LOCK):
        return RefreshOutcome.SKIPPED
    # Another process may have kept a reading since this one looked (and given the lock back): then none is due.
    [kept_now], ended = svc.store.usage.balances([account]), svc.store.usage.ended().get(account.name)
    if kept_now is not None and (ended is None or ended <= kept_now.at):
        svc.store.locks.release(lock, holder)
        return RefreshOutcome.SKIPPED
    svc.store.locks.acquire(svc.store.keys.balance_lock(account.name), holder, svc.config.bfl_credits_refresh_seconds)
    reading = _ask(svc, account, None)
    if reading is not None:
        # Kept, so no process finds it due: the next end's read need not wait for the lock to lapse.
        svc.store.locks.release(lock, holder)
    return _outcome(reading)


def _refresh_account(svc: Services, account: Account, now: float) -> RefreshOutcome:
    cooling = svc.store.cooldowns.of(account.name, now)
    broke = cooling is not None and cooling.reason == CoolingReason.INSUFFICIENT_CREDITS
    interval = min(NO_CREDITS_RECHECK, svc.config.bfl_credits_refresh_seconds) if broke \
        else svc.config.bfl_credits_refresh_seconds
    # Its own lock while it has no credits: the refresh's, held for the whole interval, must not delay its recovery.
    lock = svc.store.keys.recheck_lock(account.name) if broke else svc.store.keys.balance_lock(account.name)
    if not svc.store.locks.acquire(lock, f"{socket.gethostname()}:{os.getpid()}", int(interval)):
        return RefreshOutcome.SKIPPED
    reading = _ask(svc, account, now)
    if broke and reading is not None and reading.credits <= 0:
        svc.store.cooldowns.cool(account.name, now + interval, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    return _outcome(reading)


def _ask(svc: Services, account: Account, now: float | None) -> Balance | None:
    """Read ``account``'s balance from BFL and keep it (``now``: when it counts as read; None: as it is asked); None if
    BFL did not answer."""
    try:
        reading = read(svc, account, now)
    except FluxhookError as exc:
        log.warning("BFL's credits could not be read", extra={"account": account.name, "error": exc.message})
        return None
    keep(svc, account, reading)
    return reading


def _outcome(reading: Balance | None) -> RefreshOutcome:
    return RefreshOutcome.FAILED if reading is None else RefreshOutcome.REFRESHED
