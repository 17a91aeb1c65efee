"""``fluxhook accounts`` and ``fluxhook credits``: the BFL accounts over the API (``GET /v1/accounts``, with an admin
token), and what a token may still spend (``GET /v1/credits``, and for an admin each account's share). Both show
each account's one balance reading, as the dashboard, ``/metrics`` and ``fluxhook doctor`` do."""

from __future__ import annotations

import argparse
import time
from typing import Callable

from fluxhook import client as api
from fluxhook.cli.api_commands import client_for, format_table, print_json
from fluxhook.credits.figures import balance_words, epoch, format_credits, read_ago

ACCOUNT_COLUMNS = ("NAME", "REGION", "HOST", "IN FLIGHT", "QUEUED", "STATE", "BALANCE", "SPENT TODAY")
CREDITS_COLUMNS = ("ACCOUNT", "BALANCE")


def add_command(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    accounts = command("accounts", _list, "list the BFL accounts: tasks in flight, jobs queued, cooldowns, credits "
                                          "(needs an admin token)", [target])
    accounts.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    credits = command("credits", _credits, "the credits left: each BFL account's balance as last read, and when "
                                           "(an app key with daily_credits: what is left of them today)", [target])
    credits.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


def _list(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        accounts = fluxhook.accounts()
    if args.json:
        print_json({"accounts": accounts})
    else:
        print(format_table(ACCOUNT_COLUMNS, (account_row(account) for account in accounts)))
    return 0


def _credits(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        answer = fluxhook.credits()
        try:
            accounts = fluxhook.accounts()
        except api.APIError as exc:
            if exc.status != 403:
                raise
            accounts = None  # an app key: what it may spend, not the accounts behind it
    shown = credits_answer(answer, accounts)
    print_json(shown) if args.json else print(credits_text(shown))
    return 0


def credits_answer(credits: dict, accounts: list[dict] | None) -> dict:
    """``fluxhook credits --json``: what the token may spend and when it was read (``GET /v1/credits``); with an
    admin token each account's reading (``GET /v1/accounts``' ``balance`` and ``balance_at``)."""
    shown = {"credits": credits["credits"], "read_at": credits["read_at"]}
    if accounts is not None:
        shown["accounts"] = [{"name": a["name"], "credits": a["balance"], "read_at": a["balance_at"]} for a in accounts]
    return shown


def credits_text(shown: dict, now: float | None = None) -> str:
    """``credits_answer`` as ``fluxhook credits`` prints it: for an admin each account and the sum, each balance as
    ``fluxhook accounts`` writes it; for an app key one line."""
    now = time.time() if now is None else now
    if shown["read_at"] is None:
        return f"{format_credits(shown['credits'])} credits left today (this key's daily_credits)"
    if "accounts" not in shown:
        return balance_words(shown["credits"], epoch(shown["read_at"]), now)
    rows = [[a["name"], balance_cell(a["credits"], a["read_at"], now)] for a in shown["accounts"]]
    if len(rows) > 1:
        rows.append(["all", balance_cell(shown["credits"], shown["read_at"], now)])
    return format_table(CREDITS_COLUMNS, rows)


def balance_cell(credits: float | None, read_at: str | None, now: float) -> str:
    """A balance and when it was read, as every CLI view writes it: ``999,928 (read 40 s ago)``; ``-``: not read
    lately."""
    at = epoch(read_at)
    return "-" if credits is None or at is None else f"{format_credits(credits)} ({read_ago(at, now)})"


def account_row(account: dict, now: float | None = None) -> list[str]:
    """An account as one row of ``fluxhook accounts``: its tasks in flight (by model when more than one has some),
    whether it takes tasks or why and until when it cools down, and its credits as the dashboard and ``fluxhook doctor``
    write them, with when its balance was read (``-``: not read lately)."""
    in_flight = account["in_flight"]
    flying = str(sum(in_flight.values()))
    if len(in_flight) > 1:
        flying += " (" + ", ".join(f"{model} {n}" for model, n in sorted(in_flight.items())) + ")"
    cooling = account.get("cooling")
    state = "takes tasks" if cooling is None else f"cooling: {cooling['reason']} until {cooling['until']}"
    balance = balance_cell(account.get("balance"), account.get("balance_at"), time.time() if now is None else now)
    return [account["name"], account.get("region") or "-", account["host"], flying, str(account["queued"]), state,
            balance, format_credits(account["spent_today"])]
