"""The admin's use cases for an app key's end users: read one (its limits and its day), set its own limits, block and
unblock it by hand, and list a key's top end users (``/v1/keys/{id}/end_users``, the dashboard's key page, the CLI)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fluxhook.core.end_users import BlockReason, EndUserLimits, parse_end_user
from fluxhook.core.errors import InvalidRequest
from fluxhook.credits import accounting
from fluxhook.lifecycle.key_admin import find_key
from fluxhook.lifecycle.steps.end_user_limits import limits_of
from fluxhook.lifecycle.steps.key_fields import end_user_limits
from fluxhook.store.app_keys import AppKey
from fluxhook.store.end_users import EndUserRecord

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.keys")

# How many end users a key's top list shows.
TOP = 10


def described(svc: "Services", key: AppKey, end_user: str, record: EndUserRecord, now: float) -> dict:
    """One end user of ``key``: its own limits, those that hold for it, today's counts and spend, and its block."""
    day = accounting.utc_day(now)
    today = svc.store.end_users.counters_of(key.id, end_user, day)
    blocked = blocked_why(key, record, today.get("moderated", 0), day)
    return {"key_id": key.id, "end_user": end_user, "limits": record.limits.to_api(),
            "effective_limits": limits_of(key, record).to_api(), "date": day,
            "spent_today": accounting.from_micro(today.pop("credits", 0)), "today": today,
            "blocked": blocked is not None, "blocked_reason": blocked.value if blocked else None}


def blocked_why(key: AppKey, record: EndUserRecord, moderated: int, day: str) -> BlockReason | None:
    """Why the end user is blocked today (the rule of ``lua/end_user_take.lua``), None when it is not."""
    if record.blocked == day:
        return BlockReason.MANUAL
    lifted = record.lifted[1] if record.lifted and record.lifted[0] == day else 0
    limit = key.end_user_moderation_limit
    if limit is not None and moderated - lifted >= limit:
        return BlockReason.MODERATED
    return None


def show(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    key = find_key(svc, key_id)
    end_user = _checked(end_user)
    return described(svc, key, end_user, svc.store.end_users.record(key.id, end_user), now)


def set_limits(svc: "Services", key_id: str, end_user: str, body: Any, now: float) -> dict:
    """Set the end user's own limits (``PUT``: the body is the whole of them, ``{}`` or null fields leaving the
    key's defaults)."""
    key = find_key(svc, key_id)
    end_user = _checked(end_user)
    if isinstance(body, dict) and set(body) == {"limits"}:
        body = body["limits"]
    limits = end_user_limits(body, now, name="the body") if body is not None else EndUserLimits()
    record = svc.store.end_users.change(key.id, end_user, lambda r: replace(r, limits=limits))
    log.info("end user limits set", extra={"key_id": key.id, "fields": sorted(k for k, v in limits.to_api().items()
                                                                           if v is not None)})
    return described(svc, key, end_user, record, now)


def block(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    """Block the end user for the rest of the UTC day: its new jobs are refused (403 ``end_user_blocked``)."""
    key = find_key(svc, key_id)
    end_user = _checked(end_user)
    day = accounting.utc_day(now)
    record = svc.store.end_users.change(key.id, end_user, lambda r: replace(r, blocked=day))
    log.info("end user blocked", extra={"key_id": key.id})
    return described(svc, key, end_user, record, now)


def unblock(svc: "Services", key_id: str, end_user: str, now: float) -> dict:
    """Lift the end user's block of today, by hand or for moderation: the moderations counted until now are forgiven,
    the next ones count towards the key's limit again."""
    key = find_key(svc, key_id)
    end_user = _checked(end_user)
    day = accounting.utc_day(now)
    moderated = svc.store.end_users.counters_of(key.id, end_user, day).get("moderated", 0)
    record = svc.store.end_users.change(key.id, end_user,
                                        lambda r: replace(r, blocked=None, lifted=(day, moderated) if moderated else None))
    log.info("end user unblocked", extra={"key_id": key.id})
    return described(svc, key, end_user, record, now)


def top(svc: "Services", key_id: str, now: float, limit: int = TOP) -> list[dict]:
    """The key's end users of today with the most credits spent (then jobs), each with today's counts."""
    day = accounting.utc_day(now)
    users = svc.store.end_users.counters(key_id, [day])[day]
    ranked = sorted(users.items(), key=lambda item: (-item[1].get("credits", 0), -item[1].get("jobs", 0), item[0]))
    return [{"end_user": name, "jobs": counts.get("jobs", 0),
             "credits": accounting.from_micro(counts.get("credits", 0)),
             **{c: counts.get(c, 0) for c in ("stored", "failed", "canceled", "moderated")}}
            for name, counts in ranked[:limit]]


def _checked(end_user: str) -> str:
    named = parse_end_user(end_user, "end_user")
    if named is None:
        raise InvalidRequest("name an end user")
    return named
