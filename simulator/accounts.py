"""The accounts one simulator process serves: `--account NAME=PORT[:KEY]`, each a BFL organisation of its own."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

# fluxhook reads an account's settings as BFL_<NAME>_*, NAME upper-cased and `-` as `_`: a name must survive that.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def default_key(name: str) -> str:
    """The API key of an account given without one."""
    return f"sim-{name}-key"


@dataclass(frozen=True)
class Account:
    """One account: its name, the port its endpoint listens on (0: any free one) and its API key."""

    name: str
    port: int
    api_key: str


def parse_account(text: str) -> Account:
    """argparse type for `NAME=PORT[:KEY]`."""
    name, sep, rest = text.partition("=")
    port_text, colon, key = rest.partition(":")
    if not sep or not ACCOUNT_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PORT[:KEY], NAME of letters, digits, - and _")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: PORT must be 0 (a free port) to 65535")
    if colon and not key:
        raise argparse.ArgumentTypeError(f"{text!r}: KEY is empty (leave out ':' for {default_key(name)!r})")
    return Account(name, int(port_text), key or default_key(name))


def check_unique(accounts: list[Account]) -> str | None:
    """Why these accounts cannot run together, or None."""
    names = [a.name.upper().replace("-", "_") for a in accounts]
    if len(set(names)) < len(names):
        return "account names must differ (upper-cased, with - as _, as fluxhook reads them)"
    ports = [a.port for a in accounts if a.port]
    if len(set(ports)) < len(ports):
        return "each account needs a port of its own (or 0)"
    return None
