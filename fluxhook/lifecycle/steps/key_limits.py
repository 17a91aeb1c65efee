"""What an app key's limits allow: its requests a minute, its credits left today, its route, and what it is near."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from fluxhook.core.accounts import route_for
from fluxhook.core.errors import InvalidRequest, RateLimited
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.app_keys import AppKey, AppKeys

if TYPE_CHECKING:
    from fluxhook.services import Services


@dataclass(frozen=True)
class TakenRequest:
    """One submission or track counted against its key's ``requests_per_minute``, by the name it has there."""

    key_id: str
    name: str


def take_request(store: AppKeys, caller: Caller, now: float) -> TakenRequest | None:
    """Count one submission or track against the key's ``requests_per_minute`` (None when nothing limits it), or
    raise RateLimited (nothing counted). Only accepted requests count: one refused afterwards, for whatever reason,
    is given back (``give_back_request``)."""
    key = caller.key
    if key is None or key.requests_per_minute is None:
        return None
    name = secrets.token_hex(16)
    wait = store.take_request(key.id, key.requests_per_minute, now, name)
    if wait > 0:
        raise RateLimited(f"this app key may submit or track {key.requests_per_minute} jobs a minute; "
                          f"retry in {wait:.1f} s", retry_after=wait)
    return TakenRequest(key.id, name)


def give_back_request(store: AppKeys, taken: TakenRequest | None) -> None:
    """A counted request was refused after all (BFL's refusal, a budget's, another key's task...): it counts
    nothing against ``requests_per_minute``."""
    if taken is not None:
        store.give_back_request(taken.key_id, taken.name)


def credits_left_today(svc: "Services", key: AppKey, now: float) -> float | None:
    """What the key may still spend today under its ``daily_credits`` (never below 0); None without that limit."""
    if key.daily_credits is None:
        return None
    spent = accounting.from_micro(reports.spent_today(svc, now, key_id=key.id))
    return max(0.0, round(key.daily_credits - spent, 6))


def key_route(svc: "Services", key: AppKey) -> str | None:
    """The route of the key's jobs that name no account (None when its accounts and region match none now)."""
    try:
        return route_for(svc.config.accounts, key_accounts=key.accounts, key_region=key.region)
    except InvalidRequest:
        return None


# A key is near its daily credits from this share of them on.
NEAR_SHARE = 0.8
# A key expiring within this many seconds is near its end.
NEAR_EXPIRY = 7 * 86400


def near_limits(key: dict, now: float) -> list[str]:
    """What a key object (as ``described`` gives it) is close to, in words; empty if nothing (or it is revoked
    or expired: it is past its limits, not near them)."""
    if key["revoked_at"]:
        return []
    found = []
    if key["daily_credits"] and key["spent_today"] >= NEAR_SHARE * key["daily_credits"]:
        found.append(f"spent {key['spent_today']:g} of its {key['daily_credits']:g} daily credits")
    if key["max_active"] and key["active"] >= key["max_active"]:
        found.append(f"{key['active']} jobs at BFL, its max_active"
                     + (f", {key['queued']} more waiting" if key["queued"] else ""))
    if key["expires_at"] and 0 < datetime.fromisoformat(key["expires_at"]).timestamp() - now <= NEAR_EXPIRY:
        found.append(f"expires at {key['expires_at']}")
    return found
