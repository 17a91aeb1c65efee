"""The BFL accounts as an operator sees them: ``GET /v1/accounts``, the dashboard's accounts panel and
``fluxhook accounts`` all show this one answer, so they never disagree.

Per account: where it is (name, region, host; never its key), what it does now (tasks in flight per model, of them those
of canceled jobs BFL still runs, jobs in line it could take), whether it takes tasks (its cooldown, if any), and its
credits (the balance a worker last read from it and when, today's spend through it).
"""

from __future__ import annotations

from collections import Counter

from fluxhook.core.job import iso
from fluxhook.credits import balance as balances
from fluxhook.credits.accounting import account_spent_field, from_micro, utc_day
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.steps.key_limits import route_of
from fluxhook.services import Services
from fluxhook.store.usage import Balance


def accounts_now(svc: Services, now: float) -> list[dict]:
    """Every configured account, in ``BFL_ACCOUNTS``' order, as ``GET /v1/accounts`` lists it.

    ``in_flight`` counts the account's tasks at BFL by model, naming only the models with one in flight (``{}``
    when idle); ``canceled_running``, how many of them are of jobs canceled while BFL runs them on (they hold their
    slots until BFL says they ended, ``steps/running_on.py``). ``queued`` counts each job in line once per account it
    may go through, so with several accounts the numbers add up to more than the jobs waiting.
    """
    slots = svc.store.slots.accounts_now()
    in_flight = _in_flight_by_model(svc)
    canceled_running = Counter(holder.account for holder in svc.store.slots.ended_holders())
    by_route = svc.store.slots.queued_by_route()
    allows = svc.store.slots.accounts_for(list(by_route))
    day = utc_day(now)
    shown = []
    # Each account's reading of its own BFL (one round trip), the one every view shows.
    readings = balances.kept(svc, [seen.account for seen in slots])
    # A small read per account (at most 32): cheaper than the whole day's counters, thousands of fields.
    for seen in slots:
        account = seen.account
        balance = readings[account.name]
        shown.append({
            "name": account.name,
            "region": account.region,
            "host": account.host,
            "in_flight": in_flight[account.name],
            "canceled_running": canceled_running[account.name],
            "queued": sum(n for route, n in by_route.items() if account.name in allows[route]),
            "cooling": None if seen.cooling is None else seen.cooling.to_api(),
            "balance": None if balance is None else balance.credits,
            "balance_at": None if balance is None else iso(balance.at),
            "spent_today": from_micro(svc.store.usage.counter(day, account_spent_field(account.name))),
        })
    return shown


def _in_flight_by_model(svc: Services) -> dict[str, dict[str, int]]:
    """Each account's tasks at BFL by model, from the jobs holding its slots: two round trips in all (at
    most 32 accounts' slots). A job deleted between the two reads is counted under ``unknown``."""
    holders = svc.store.slots.holders_by_account()
    models = iter(svc.jobs.models_of([job_id for held in holders.values() for job_id in held]))
    return {account: dict(Counter(next(models) or "unknown" for _ in held)) for account, held in holders.items()}


def callers_balance(svc: Services, caller: Caller) -> Balance | None:
    """The credits of the accounts ``caller`` may send jobs through (its key's accounts or region; an admin's: every
    configured account), each read from that account, added up; None until a worker has read every one of them."""
    route = route_of(svc, caller, "", None)
    names = svc.store.slots.accounts_for([route])[route]
    return balances.together(balances.kept(svc, [a for a in svc.config.accounts if a.name in names]).values())
