"""The admin's use cases for app keys: create, find, change and describe them (``/v1/keys`` and the dashboard's
Keys page; revoking one is ``revoking``), and their end users: read one, set its own limits, block and unblock it, list
a key's top end users (``/v1/keys/{id}/end_users``, the dashboard's key page, the CLI)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from fluxhook.core.accounts import Account
from fluxhook.core.end_users import BlockReason, EndUserLimits, parse_end_user
from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked
from fluxhook.core.notify_rules import check_notify_url, field_wording
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle.steps import notify_secrets, waits
from fluxhook.lifecycle.steps.callers import is_key_id
from fluxhook.lifecycle.steps.end_user_limits import blocked_why, end_waiting, limits_of
from fluxhook.lifecycle.steps.key_fields import end_user_limits, new_key, parse, present_key
from fluxhook.lifecycle.steps.key_limits import key_route
from fluxhook.store.app_keys import MISSING, REVOKED, AppKey
from fluxhook.store.end_users import EndUserRecord
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
    values, secret = notify_secrets.rotation(svc, find_key(svc, key_id), now)
    _change(svc, key_id, values)
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
    _change(svc, key_id, values, unset)
    if BUDGET_FIELDS & {*values, *unset}:
        waits.wake_held(svc, key_id)
    log.info("app key changed", extra={"key_id": key_id, "fields": sorted([*values, *unset])})
    return find_key(svc, key_id)


def _change(svc: "Services", key_id: str, values: dict[str, Any], unset: tuple[str, ...] = ()) -> None:
    outcome = svc.store.app_keys.change(key_id, values, unset)
    if outcome == MISSING:
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    if outcome == REVOKED:
        raise KeyRevoked("this app key is revoked; create a new one")


# A key's fields whose change may let its jobs held for the day's credits go: they are looked at again at once.
BUDGET_FIELDS = frozenset({"daily_credits", "end_user_limits"})
# How many end users a key's top list shows.
TOP = 10


def end_user_described(svc: "Services", key: AppKey, end_user: str, record: EndUserRecord, now: float) -> dict:
    """One end user of ``key``: its own limits, those that hold for it, today's counts and spend, and its block."""
    day = accounting.utc_day(now)
    today = svc.store.end_users.counters_of(key.id, end_user, day)
    blocked = blocked_why(key, record, today.get("moderated", 0), day)
    return {"key_id": key.id, "end_user": end_user, "limits": record.limits.to_api(),
            "effective_limits": limits_of(key, record).to_api(), "date": day,
            "spent_today": accounting.from_micro(today.pop("credits", 0)), "today": today,
            "blocked": blocked is not None, "blocked_reason": blocked.value if blocked else None}


def show_end_user(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    key, end_user = _end_user(svc, key_id, end_user)
    return end_user_described(svc, key, end_user, svc.store.end_users.record(key.id, end_user), now)


def set_end_user_limits(svc: "Services", key_id: str, end_user: str, body: Any, now: float) -> dict:
    """Set the end user's own limits (``PUT``: the whole of them, ``{}`` or null fields leaving the key's defaults)."""
    key, end_user = _end_user(svc, key_id, end_user)
    if isinstance(body, dict) and set(body) == {"limits"}:
        body = body["limits"]
    limits = end_user_limits(body, now, name="the body") if body is not None else EndUserLimits()
    record = _change_end_user(svc, key, end_user, lambda r: replace(r, limits=limits))
    waits.wake_held(svc, key.id)
    log.info("end user limits set", extra={"key_id": key.id, "fields": sorted(k for k, v in limits.to_api().items()
                                                                           if v is not None)})
    return end_user_described(svc, key, end_user, record, now)


def block_end_user(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    """Block the end user for the rest of the UTC day: its new jobs are refused (403 ``end_user_blocked``), and those
    not yet sent to BFL end ``canceled`` (``end_user_limits.end_waiting``)."""
    key, end_user = _end_user(svc, key_id, end_user)
    record = _change_end_user(svc, key, end_user, lambda r: replace(r, blocked=accounting.utc_day(now)))
    # Its jobs not yet sent to BFL are not sent: those waiting end now, any other as its sender looks at it.
    ended = end_waiting(svc, key.id, end_user, BlockReason.MANUAL)
    log.info("end user blocked", extra={"key_id": key.id, "queued_jobs_ended": ended})
    return end_user_described(svc, key, end_user, record, now)


def unblock_end_user(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    """Lift the end user's block of today, by hand or for moderation: the moderations counted until now are forgiven,
    the next ones count towards the key's limit again."""
    key, end_user = _end_user(svc, key_id, end_user)
    day = accounting.utc_day(now)
    moderated = svc.store.end_users.counters_of(key.id, end_user, day).get("moderated", 0)
    record = _change_end_user(svc, key, end_user,
                                        lambda r: replace(r, blocked=None, lifted=(day, moderated) if moderated else None))
    log.info("end user unblocked", extra={"key_id": key.id})
    return end_user_described(svc, key, end_user, record, now)


def top_end_users(svc: "Services", key_id: str, now: float) -> list[dict]:
    """The key's end users of today with the most credits spent (then jobs), each with today's counts."""
    day = accounting.utc_day(now)
    users = svc.store.end_users.counters(key_id, [day])[day]
    ranked = sorted(users.items(), key=lambda item: (-item[1].get("credits", 0), -item[1].get("jobs", 0), item[0]))
    return [{"end_user": name, "jobs": counts.get("jobs", 0),
             "credits": accounting.from_micro(counts.get("credits", 0)),
             **{c: counts.get(c, 0) for c in ("stored", "failed", "canceled", "moderated")}}
            for name, counts in ranked[:TOP]]


def _change_end_user(svc: "Services", key: AppKey, end_user: str,
                     change: Callable[[EndUserRecord], EndUserRecord]) -> EndUserRecord:
    """Change the end user's record, its key marked first as one whose new jobs read their end user's record (within
    a second on every web process, as any change of a key)."""
    if not key.end_user_records:
        svc.store.app_keys.change(key.id, {"end_user_records": True})
    return svc.store.end_users.change(key.id, end_user, change)


def _end_user(svc: "Services", key_id: str, end_user: str) -> tuple[AppKey, str]:
    key = find_key(svc, key_id)
    named = parse_end_user(end_user, "end_user")
    if named is None:
        raise InvalidRequest("name an end user")
    return key, named
