"""``fluxhook keys create|list|update|revoke|end-users|notify-secret|notify-enable``: app keys over the API, with an admin
token."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from fluxhook.cli.api_commands import action_adder, client_for, listed, print_json, print_rows

# How an on/off option is read (a KeyError is a ValueError's kin to argparse: see _value).
_ON_OFF = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
# What the limit options set, and how a value is read ('none' removes the limit on update).
_LIMITS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "models": ("--models", listed, "models it may use, comma-separated (default: any)"),
    "daily_credits": ("--daily-credits", float, "credits it may spend per UTC day"),
    "max_active": ("--max-active", int, "its jobs at BFL at once; more wait queued"),
    "max_queued": ("--max-queued", int, "its jobs and batch items queued for BFL at once; past it a submission, track "
                                        "or batch is refused 429 queue_full (default: the service's "
                                        "MAX_QUEUED_PER_KEY)"),
    "requests_per_minute": ("--requests-per-minute", int, "submissions per minute"),
    "reads_per_minute": ("--reads-per-minute", int, "its reads per minute (every request but a submission; default: "
                                                    "the service's READS_PER_MINUTE)"),
    "items_per_minute": ("--items-per-minute", int, "jobs and batch items it may create per minute (default: the "
                                                    "service's ITEMS_PER_MINUTE)"),
    "items_per_day": ("--items-per-day", int, "jobs and batch items it may create per UTC day (default: the service's "
                                              "ITEMS_PER_DAY)"),
    "weight": ("--weight", int, "its share of BFL's slots when several keys wait (default 1)"),
    "expires_at": ("--expires-at", str, "when it stops working, ISO 8601 with a zone (2027-01-01T00:00:00Z)"),
    "notify_url": ("--notify-url", str.strip, "where its jobs' notifications go unless a job names its own"),
    "notify_events": ("--notify-events", listed, "notifications beyond job.ended, comma-separated: job.submitted, "
                                                  "job.progress"),
    "strict_input": ("--strict-input", lambda text: _ON_OFF[text.strip().lower()],
                     "on: a job or batch item whose input holds a field the model's schema does not know is refused "
                     "(400); off (the default): it is sent and named in the answer's warnings"),
}
# Where its jobs may go: the BFL accounts by name, or a region; 'any' lifts the restriction (sent as
# null, as the API spells "any account").
_PLACES: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "accounts": ("--accounts", listed, "the BFL accounts its jobs may use, comma-separated (`fluxhook accounts` lists "
                                       "them), or 'any' (default: any)"),
    "region": ("--region", str.strip, "the region its jobs must stay in (the accounts' BFL_<NAME>_REGION), or 'any' "
                                      "(default: any)"),
}
# The limits a key sets for each of its end users (its end_user_limits), and one end user for itself.
END_USER_LIMITS = ("requests_per_minute", "max_active", "max_queued", "daily_credits")
KEY_COLUMNS = ("ID", "NAME", "PREFIX", "STATE", "SPENT TODAY", "ACTIVE/QUEUED", "WAITING FOR", "RATE", "WEIGHT",
               "ACCOUNTS", "LAST USED")


def add_commands(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    keys = command("keys", None, "manage app keys (one token per app, with its own limits): needs an admin token")
    action = action_adder(keys, "keys_command", target)

    create = action("create", _create, "create a key; prints it with its secret, shown this once")
    create.add_argument("name", help="what the app using it is called")
    _limit_options(create, removable=False)

    listing = action("list", _list, "list every key, newest first")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    update = action("update", _update, "change a key's name, limits ('none' removes a limit) or accounts and region "
                                       "('any' lifts them)")
    update.add_argument("key_id", metavar="KEY_ID")
    update.add_argument("--name", help="a new name")
    _limit_options(update, removable=True)

    revoke = action("revoke", _revoke, "revoke a key: its queued jobs end, its submitted ones finish")
    revoke.add_argument("key_id", metavar="KEY_ID")

    rotate = action("notify-secret", _rotate, "give a key a new notification secret, printed this once; for a day "
                                              "notifications carry both the old and the new signature")
    rotate.add_argument("key_id", metavar="KEY_ID")

    end_users = action("end-users", _end_users, "a key's end users of today with the most credits spent; with "
                                                "--show, --set-limits, --block or --unblock END_USER, one end user")
    end_users.add_argument("key_id", metavar="KEY_ID")
    one = end_users.add_mutually_exclusive_group()
    one.add_argument("--show", metavar="END_USER", help="print this end user: its own limits, those that hold for it, "
                                                        "today's counts and spend, its block")
    one.add_argument("--set-limits", metavar="END_USER", help="set this end user's own limits to the limit options "
                     "given; one left out is the key's end_user_limits' again (--set-limits NAME alone clears them)")
    one.add_argument("--block", metavar="END_USER", help="block this end user until the UTC day ends")
    one.add_argument("--unblock", metavar="END_USER", help="lift this end user's block of today")
    for field in END_USER_LIMITS:
        option, read, _ = _LIMITS[field]
        end_users.add_argument(option, dest=field, type=_value(read, removable=False), metavar="VALUE",
                               help=f"with --set-limits: its {field}")
    end_users.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    enable = action("notify-enable", _enable, "send a key's notifications again to the targets a 410 disabled")
    enable.add_argument("key_id", metavar="KEY_ID")


# What 'none' does to a limit that always holds, one of its own or the service's (sent as null all the same).
_BACK_TO_DEFAULT = {"max_queued": "; 'none' returns it to MAX_QUEUED_PER_KEY",
                    "reads_per_minute": "; 'none' returns it to READS_PER_MINUTE",
                    "items_per_minute": "; 'none' returns it to ITEMS_PER_MINUTE",
                    "items_per_day": "; 'none' returns it to ITEMS_PER_DAY",
                    "strict_input": "; 'none' returns it to off"}


def _limit_options(parser: argparse.ArgumentParser, removable: bool) -> None:
    for field, (option, read, help_text) in _LIMITS.items():
        removal = _BACK_TO_DEFAULT.get(field, "; 'none' removes it")
        parser.add_argument(option, dest=field, type=_value(read, removable), metavar="VALUE",
                            help=help_text + (removal if removable else ""))
    for field, (option, read, help_text) in _PLACES.items():
        parser.add_argument(option, dest=field, type=_place(read), metavar="VALUE", help=help_text)
    parser.add_argument("--end-user-limits", dest="end_user_limits", type=_value(_end_user_limits, removable),
                        metavar="JSON", help="the limits each of its end users has unless set for one (keys "
                        "end-users --set-limits), a JSON object of " + ", ".join(END_USER_LIMITS)
                        + (", e.g. '{\"daily_credits\": 5}'" + ("; 'none' removes them" if removable else "")))


def _place(read: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.strip().lower() == "any":
            return _NONE
        value = read(text)
        if not value:
            raise argparse.ArgumentTypeError("name an account or a region, or say 'any'")
        return value
    return parse


def _value(read: Callable[[str], Any], removable: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if removable and text.strip().lower() == "none":
            return _NONE
        try:
            return read(text)
        except (ValueError, KeyError):
            raise argparse.ArgumentTypeError(f"not a valid value: {text!r}") from None
    return parse


def _end_user_limits(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


# An option given as 'none' (or 'any' for a place): the limit is removed (sent as null).
_NONE = object()


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    given = {field: getattr(args, field) for field in (*_LIMITS, *_PLACES, "end_user_limits")
             if getattr(args, field) is not None}
    return {field: (None if value is _NONE else value) for field, value in given.items()}


def _create(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        created = fluxhook.create_key(args.name, **_limits(args))
    print_json(created)
    print("the key's secret is shown this once: keep it now (fluxhook keeps only its hash)", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        keys = fluxhook.keys()
    if args.json:
        print_json({"keys": keys})
    else:
        print_rows(KEY_COLUMNS, [key_row(key) for key in keys], "no app keys")
    return 0


def key_row(key: dict) -> list[str]:
    """A key as one row of ``fluxhook keys list``."""
    state = "revoked" if key.get("revoked_at") else "active"
    spent = f"{key['spent_today']:g}" + (f" / {key['daily_credits']:g}" if key.get("daily_credits") else "")
    rate = f"{key['requests_per_minute']}/min" if key.get("requests_per_minute") else "-"
    return [key["id"], key["name"], key["prefix"], state, spent, f"{key['active']}/{key['queued']}", waiting_for(key),
            rate, str(key["weight"]), places(key), key.get("last_used_at") or "never"]


def places(key: dict) -> str:
    """Where a key's jobs may go: ``eu,us``, ``region eu``, both, or ``any``."""
    shown = [",".join(key["accounts"])] if key.get("accounts") is not None else []
    if key.get("region") is not None:
        shown.append(f"region {key['region']}")
    return " ".join(shown) or "any"


def waiting_for(key: dict) -> str:
    """Why a key's queued jobs wait, from its ``queued_by_reason``: ``key_daily_credits 2, bfl_slots 1``; ``-``
    when none waits."""
    reasons = key.get("queued_by_reason") or {}
    return ", ".join(f"{reason} {count}" for reason, count in reasons.items()) or "-"


def _update(args: argparse.Namespace) -> int:
    changes = _limits(args)
    if args.name is not None:
        changes["name"] = args.name
    if not changes:
        print("fluxhook keys update: nothing to change; give --name, a limit, --accounts or --region", file=sys.stderr)
        return 2
    with client_for(args) as fluxhook:
        print_json(fluxhook.update_key(args.key_id, **changes))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        fluxhook.revoke_key(args.key_id)
    print(f"revoked {args.key_id}", file=sys.stderr)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        rotated = fluxhook.rotate_notify_secret(args.key_id)
    print(rotated["notify_secret"])
    print("the new notification secret is shown this once; the old one also signs for 24 hours", file=sys.stderr)
    return 0


END_USER_COLUMNS = ("END USER", "JOBS", "CREDITS", "STORED", "FAILED", "CANCELED", "MODERATED")


def _end_users(args: argparse.Namespace) -> int:
    limits = {field: getattr(args, field) for field in END_USER_LIMITS if getattr(args, field) is not None}
    if limits and not args.set_limits:
        print("fluxhook keys end-users: the limit options go with --set-limits END_USER", file=sys.stderr)
        return 2
    with client_for(args) as fluxhook:
        if args.set_limits:
            print_json(fluxhook.set_end_user_limits(args.key_id, args.set_limits, **limits))
            return 0
        if args.show or args.block or args.unblock:
            block = None if args.show else bool(args.block)
            print_json(fluxhook.end_user(args.key_id, args.show or args.block or args.unblock, block=block))
            return 0
        users = fluxhook.end_users(args.key_id)
    if args.json:
        print_json({"end_users": users})
    else:
        print_rows(END_USER_COLUMNS, [[u["end_user"], str(u["jobs"]), f"{u['credits']:g}", str(u["stored"]),
                                       str(u["failed"]), str(u["canceled"]), str(u["moderated"])] for u in users],
                   "no end user named by this key's jobs today")
    return 0


def _enable(args: argparse.Namespace) -> int:
    with client_for(args) as fluxhook:
        count = fluxhook.enable_notifications(args.key_id)
    print(f"enabled: {count} target(s) a 410 had disabled; `fluxhook deliveries replay --state disabled` sends "
          "what they missed")
    return 0
