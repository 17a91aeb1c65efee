"""``fluxhook accounts``: the BFL accounts over the API (``GET /v1/accounts``), with an admin token."""

from __future__ import annotations

import argparse
import time
from typing import Callable

from fluxhook.cli.api_commands import client_for, format_table, print_json
from fluxhook.credits.figures import epoch, format_credits, read_ago

ACCOUNT_COLUMNS = ("NAME", "REGION", "HOST", "IN FLIGHT", "QUEUED", "STATE", "BALANCE", "SPENT TODAY")


def add_command(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    """Add ``accounts``, using the main command's ``command`` helper and ``target`` options."""
    accounts = command("accounts", _list, "list the BFL accounts: tasks in flight, jobs queued, cooldowns, credits "
                                          "(needs an admin token)", [target])
    accounts.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


def _list(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        accounts = fluxhook.accounts()
    if args.json:
        print_json({"accounts": accounts})
    else:
        print(format_table(ACCOUNT_COLUMNS, (account_row(account) for account in accounts)))
    return 0


def account_row(account: dict, now: float | None = None) -> list[str]:
    """An account as one row of ``fluxhook accounts``: its tasks in flight (by pool when more than one has some),
    whether it takes tasks or why and until when it cools down, and its credits as the dashboard and ``fluxhook doctor``
    write them, with when its balance was read (``-``: not read lately)."""
    in_flight = account["in_flight"]
    flying = str(sum(in_flight.values()))
    if len(in_flight) > 1:
        flying += " (" + ", ".join(f"{pool} {n}" for pool, n in sorted(in_flight.items())) + ")"
    cooling = account.get("cooling")
    state = "takes tasks" if cooling is None else f"cooling: {cooling['reason']} until {cooling['until']}"
    read_at = epoch(account.get("balance_at"))
    balance = "-" if account.get("balance") is None or read_at is None else \
        f"{format_credits(account['balance'])} ({read_ago(read_at, time.time() if now is None else now)})"
    return [account["name"], account.get("region") or "-", account["host"], flying, str(account["queued"]), state,
            balance, format_credits(account["spent_today"])]
