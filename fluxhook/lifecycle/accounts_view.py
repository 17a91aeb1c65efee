"""The BFL accounts as an operator sees them (SPEC §14): ``GET /v1/accounts``, the dashboard's accounts panel and
``fluxhook accounts`` all show this one answer, so they never disagree.

Per account: where it is (name, region, host; never its key), what it does now (tasks in flight per slot pool,
jobs in line it could take), whether it takes tasks (its cooldown, if any), and its credits (the balance a worker
last read from that account and when, today's spend through it).
"""

from __future__ import annotations

from fluxhook.core.job import iso
from fluxhook.credits import balance as balances
from fluxhook.credits.accounting import account_spent_field, from_micro, utc_day
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.steps.routing import route_of
from fluxhook.services import Services
from fluxhook.store.usage import Balance


def accounts_now(svc: Services, now: float) -> list[dict]:
    """Every configured account, in ``BFL_ACCOUNTS``' order, as ``GET /v1/accounts`` lists it.

    ``in_flight`` names only the pools with a task in flight (``{}`` when idle): a pool's limit is configuration,
    not state, and most pools are empty most of the time. ``queued`` counts each job in line once per account it
    may go through, so with several accounts the numbers add up to more than the jobs waiting.
    """
    slots = svc.store.slots.accounts_now()
    by_route = svc.store.slots.queued_by_route()
    allows = svc.store.slots.accounts_for(list(by_route))
    day = utc_day(now)
    shown = []
    # Two small reads per account (at most 32): cheaper than the whole day's counters, thousands of fields.
    for seen in slots:
        account = seen.account
        balance = svc.store.usage.balance(account=account.name)
        shown.append({
            "name": account.name,
            "region": account.region,
            "host": account.host,
            "in_flight": {pool: n for pool, n in seen.held.items() if n > 0},
            "queued": sum(n for route, n in by_route.items() if account.name in allows[route]),
            "cooling": None if seen.cooling is None else seen.cooling.to_api(),
            "balance": None if balance is None else balance.credits,
            "balance_at": None if balance is None else iso(balance.at),
            "spent_today": from_micro(svc.store.usage.counter(day, account_spent_field(account.name))),
        })
    return shown


def callers_balance(svc: Services, caller: Caller) -> Balance | None:
    """The credits of the accounts ``caller`` may send jobs through (its key's accounts or region; an admin's: every
    configured account), each read from that account, added up; None until a worker has read every one of them."""
    route = route_of(svc, caller, "", None)
    names = svc.store.slots.accounts_for([route])[route]
    return balances.together(balances.kept(svc, [a for a in svc.config.accounts if a.name in names]).values())
