"""The admin's use cases for app keys: create, find, change and describe them (``/v1/keys`` and the dashboard's
Keys page; revoking one is ``revoking``)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fluxhook.core.accounts import Account
from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked
from fluxhook.core.notify_urls import check_notify_url, field_wording
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle.steps import notify_secrets, waits
from fluxhook.lifecycle.steps.callers import is_key_id
from fluxhook.lifecycle.steps.key_fields import new_key, parse, present_key
from fluxhook.lifecycle.steps.key_limits import key_route
from fluxhook.store.app_keys import MISSING, REVOKED, AppKey
from fluxhook.store.owners import owner_of

log = logging.getLogger("fluxhook.keys")

if TYPE_CHECKING:
    from fluxhook.services import Services


def described(svc: Services, keys: list[AppKey], now: float) -> list[dict]:
    """The key objects of ``keys`` with today's spend and jobs, their jobs at BFL (of those, the canceled ones BFL
    still runs) and those waiting, and why they wait (at most six reads)."""
    today = accounting.utc_day(now)
    counters = svc.store.usage.days([today])[today]
    jobs = waits.of_keys(svc, [k.id for k in keys], {k.id: key_route(svc, k) for k in keys})
    canceled_running = Counter(holder.owner for holder in svc.slots.ended_holders()) if keys else Counter()
    return [present_key(key, spent_today=accounting.from_micro(counters.get(accounting.spent_field(key.id), 0)),
                        jobs_today=reports.jobs_today(counters, key.id),
                        jobs=replace(jobs[key.id], canceled_running=canceled_running[owner_of(key.id)]))
            for key in keys]


def check_routing(accounts: tuple[Account, ...], values: dict[str, Any]) -> None:
    """``InvalidRequest`` when a key's ``accounts`` or ``region`` names what no configured account is: its jobs
    could never be sent."""
    unknown = [name for name in values.get("accounts") or () if name not in {a.name for a in accounts}]
    if unknown:
        raise InvalidRequest(f"'accounts': there is no BFL account {unknown[0]!r} (BFL_ACCOUNTS); "
                             "GET /v1/accounts lists them")
    region = values.get("region")
    if region is not None and region not in {a.region for a in accounts}:
        raise InvalidRequest(f"'region': no BFL account has region {region!r} (BFL_<NAME>_REGION); "
                             "GET /v1/accounts lists them")


def check_notify_host(svc: "Services", values: dict[str, Any]) -> None:
    """``InvalidRequest`` when a key's ``notify_url`` names a host ``NOTIFY_HOST_ALLOWLIST`` does not allow."""
    if values.get("notify_url") is not None:
        check_notify_url(values["notify_url"], svc.config.notify_host_allowlist, field_wording("notify_url"))


def create_key(svc: "Services", body: Any, now: float) -> tuple[AppKey, str]:
    """A new app key from a request's ``body`` (``InvalidRequest`` for a bad one) and its secret, shown this once
    with its notification secret (``notify_secrets.current``)."""
    values, _ = parse(body, creating=True, now=now)
    check_routing(svc.config.accounts, values)
    check_notify_host(svc, values)
    key, secret = new_key({**values, **notify_secrets.fresh_fields(svc)}, now)
    svc.store.app_keys.create(key)
    log.info("app key created", extra={"key_id": key.id, "key_name": key.name})
    return key, secret


def rotate_notify_secret(svc: "Services", key_id: str, now: float) -> tuple[AppKey, str]:
    """A new notification secret for the key, shown this once; the old one signs beside it for a day.
    ``KeyNotFound``, or ``KeyRevoked``."""
    key = find_key(svc, key_id)
    values, secret = notify_secrets.rotation(svc, key, now)
    outcome = svc.store.app_keys.change(key_id, values)
    if outcome == MISSING:
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    if outcome == REVOKED:
        raise KeyRevoked("this app key is revoked; create a new one")
    log.info("app key's notification secret rotated", extra={"key_id": key_id})
    return find_key(svc, key_id), secret


def find_key(svc: "Services", key_id: str) -> AppKey:
    """The app key ``key_id``; ``KeyNotFound`` when there is none."""
    key = svc.store.app_keys.get(key_id) if is_key_id(key_id) else None
    if key is None:
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    return key


def change_key(svc: "Services", key_id: str, body: Any, now: float) -> AppKey:
    """Change a key's name and limits from a request's ``body`` (``null`` removes a limit); the key as changed.
    ``KeyNotFound``, or ``KeyRevoked``: a revoked key cannot change."""
    find_key(svc, key_id)
    values, unset = parse(body, creating=False, now=now)
    check_routing(svc.config.accounts, values)
    check_notify_host(svc, values)
    outcome = svc.store.app_keys.change(key_id, values, unset)
    if outcome == MISSING:
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    if outcome == REVOKED:
        raise KeyRevoked("this app key is revoked; create a new one")
    log.info("app key changed", extra={"key_id": key_id, "fields": sorted([*values, *unset])})
    return find_key(svc, key_id)
