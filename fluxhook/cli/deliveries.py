"""``fluxhook deliveries list|replay``: the notifications console over the API: every message with its
attempts, and replay with the messages' own webhook-ids."""

from __future__ import annotations

import argparse
from typing import Callable

from fluxhook.cli.api_commands import action_adder, client_for, print_json, print_rows
from fluxhook.cli.exits import CLIError

COLUMNS = ("ID", "EVENT", "TARGET", "STATE", "ATTEMPTS", "LAST ANSWER", "MADE")
STATES = ("pending", "delivered", "failed", "disabled")


def add_commands(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    deliveries = command("deliveries", None, "notifications to the apps: every message and attempt, and replay")
    action = action_adder(deliveries, "deliveries_command", target)

    listing = action("list", _list, "list notification messages, newest first: a job's, or yours by state and time "
                                    "(an admin token's: every key's)")
    listing.add_argument("--job", metavar="JOB_ID", help="the messages of this job (default: yours, an admin's: all)")
    listing.add_argument("--limit", type=int, help="at most this many (1-1000, default 100)")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    _filters(listing)

    replay = action("replay", _replay, "send notifications again with their own webhook-ids: one message, or every "
                                       "one in --state from --from to --to (at most 10,000 a call)")
    replay.add_argument("message_id", metavar="MESSAGE_ID", nargs="?", help="one message (msg_...)")
    _filters(replay)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", choices=STATES, help="only messages in this state")
    parser.add_argument("--from", dest="since", metavar="TIME", help="made at or after this ISO 8601 time or date")
    parser.add_argument("--to", dest="until", metavar="TIME", help="made at or before this ISO 8601 time or date")
    parser.add_argument("--key-id", metavar="KEY_ID", help="with an admin token: only that key's messages (default: "
                                                            "every key's and the admin tokens' jobs')")


def _list(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        found = (fluxhook.deliveries(args.job) if args.job else
                 fluxhook.deliveries(state=args.state, since=args.since, until=args.until, limit=args.limit,
                                     key_id=args.key_id))
    if args.job and args.state:
        found = [m for m in found if m["state"] == args.state]
    if args.json:
        print_json({"deliveries": found})
    else:
        print_rows(COLUMNS, [row(m) for m in found], "no deliveries")
    return 0


def row(message: dict) -> list[str]:
    """A message as one row of ``fluxhook deliveries list``."""
    attempts = message.get("attempts") or []
    last = attempts[-1] if attempts else None
    answer = "" if last is None else (str(last["status"]) if last["status"] is not None else last["error"] or "")
    return [message["id"], message["event"], message["target"], message["state"], str(len(attempts)), answer,
            message["created_at"]]


def _replay(args: argparse.Namespace) -> int:
    if args.message_id is None and args.state is None:
        raise CLIError("give a MESSAGE_ID, or --state (such as failed)")
    with client_for(args) as fluxhook:
        count = (fluxhook.replay(args.message_id) if args.message_id else
                 fluxhook.replay(state=args.state, since=args.since, until=args.until, key_id=args.key_id))
    print(f"replayed: {count} (each with its own webhook-id)")
    return 0
