"""An app key's fields: the request bodies of ``POST`` and ``PATCH /v1/keys`` read, a new key made, a key shown."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fluxhook.core.accounts import ACCOUNT_NAME, MAX_ACCOUNTS, REGION_NAME
from fluxhook.core.config import MAX_ITEMS_PER_DAY, MAX_ITEMS_PER_MINUTE, MAX_READS_PER_MINUTE
from fluxhook.core.end_users import LIMIT_FIELDS, EndUserLimits
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job import iso
from fluxhook.core.models import MODEL
from fluxhook.core.notify_rules import check_form, field_wording, parse_events
from fluxhook.lifecycle.steps.callers import ID_PREFIX, SECRET_PREFIX, digest
from fluxhook.lifecycle.steps.waits import KeyJobs
from fluxhook.store.app_keys import AppKey
from fluxhook.store.owners import DEFAULT_WEIGHT

MAX_NAME = 100
MAX_MODELS = 100
MAX_WEIGHT = 100
# The largest max_queued a key may have: MAX_QUEUED_PER_KEY's own bound (what a Redis needs for it: docs/scaling.md).
MAX_QUEUED = 10_000_000
_LIMITS = ("models", "daily_credits", "max_active", "max_queued", "requests_per_minute", "reads_per_minute",
           "items_per_minute", "items_per_day", "weight", "expires_at", "accounts", "region", "notify_url",
           "notify_events", "end_user_limits", "end_user_moderation_limit")
# Its settings: sent as null, a setting returns to its default.
_SETTINGS = ("strict_input",)
_DEFAULTS = {"weight": DEFAULT_WEIGHT, "strict_input": False}
_CHANGEABLE = ("name", *_LIMITS, *_SETTINGS)


def new_key(values: dict[str, Any], now: float) -> tuple[AppKey, str]:
    """A new key with ``values`` (as ``parse`` gives them) and its secret."""
    part = secrets.token_hex(8)
    secret = f"{SECRET_PREFIX}{part}_{secrets.token_urlsafe(32)}"
    key = AppKey(id=ID_PREFIX + part, prefix=secret[:8], secret_sha256=digest(secret), created_at=now,
                 **{"weight": DEFAULT_WEIGHT, **values})
    return key, secret


def parse(body: Any, *, creating: bool, now: float) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The fields a create or change request sets, and the limits it removes (sent as ``null``).

    InvalidRequest, saying what to send, for anything else.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(body) - set(_CHANGEABLE))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}; a key has {', '.join(_CHANGEABLE)}")
    if creating and "name" not in body:
        raise InvalidRequest("'name' is required: what the app using this key is called")
    values: dict[str, Any] = {}
    unset: list[str] = []
    for name, value in body.items():
        if value is None and name in (*_LIMITS, *_SETTINGS):
            if name in _DEFAULTS:
                values[name] = _DEFAULTS[name]
            else:
                unset.append(name)
            continue
        values[name] = _PARSERS[name](value, now)
    return values, tuple(unset)


def _name(value: Any, now: float) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise InvalidRequest(f"'name' must be a non-empty line of at most {MAX_NAME} printable characters")
    return value.strip()


def _names(name: str, most: int, form: re.Pattern[str], said: str) -> Callable[[Any, float], tuple[str, ...]]:
    """A non-empty list of at most ``most`` names of ``form``, each kept once (``said``: what they are, or null)."""
    def parse_names(value: Any, now: float) -> tuple[str, ...]:
        if (not isinstance(value, list) or not value or len(value) > most
                or not all(isinstance(v, str) and form.fullmatch(v) for v in value)):
            raise InvalidRequest(f"'{name}' must be a non-empty list of {said}")
        return tuple(dict.fromkeys(value))
    return parse_names


def _whole(name: str, low: int, high: int) -> Callable[[Any, float], int]:
    def parse_whole(value: Any, now: float) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}, or null")
        return value
    return parse_whole


def _credits(value: Any, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1e9:
        raise InvalidRequest("'daily_credits' must be a number of credits above 0, or null")
    return float(value)


def _expires(value: Any, now: float) -> float:
    stamp = None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
            stamp = when.astimezone(UTC).timestamp() if when.tzinfo is not None else None
        except (ValueError, OverflowError):
            stamp = None
    if stamp is None:
        raise InvalidRequest("'expires_at' must be an ISO 8601 time with its zone, such as "
                             "'2027-01-01T00:00:00Z', or null")
    if stamp <= now:
        raise InvalidRequest("'expires_at' must be in the future")
    return stamp


def _region(value: Any, now: float) -> str:
    if not isinstance(value, str) or not REGION_NAME.fullmatch(value):
        raise InvalidRequest("'region' must be a region label of the BFL accounts, such as 'eu', or null for any")
    return value


# The most queued jobs a key may let one end user hold: its queue's ids are read back whole when it is full.
MAX_END_USER_QUEUED = 10_000


def end_user_limits(value: Any, now: float, *, name: str = "end_user_limits") -> EndUserLimits:
    """An ``end_user_limits`` object (or an end user's own limits, ``name``): the key's own limit fields, each
    read as the key's is; null for a field leaves that limit unset."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{name}' must be an object of {', '.join(LIMIT_FIELDS)} (each optional), or null")
    unknown = sorted(set(value) - set(LIMIT_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r} in '{name}'; it has {', '.join(LIMIT_FIELDS)}")
    parsers = {"requests_per_minute": _PARSERS["requests_per_minute"], "max_active": _PARSERS["max_active"],
               "max_queued": _whole("max_queued", 1, MAX_END_USER_QUEUED), "daily_credits": _credits}
    try:
        return EndUserLimits(**{k: parsers[k](v, now) for k, v in value.items() if v is not None})
    except InvalidRequest as error:
        raise InvalidRequest(f"in '{name}': {error.message}") from None


def _strict_input(value: Any, now: float) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest("'strict_input' must be true (a field of a job's input that the model's schema does not "
                             "know is refused, 400) or false (it is sent and named in the answer's warnings)")
    return value


_PARSERS: dict[str, Callable[[Any, float], Any]] = {
    # notify_url's form here; its host against NOTIFY_HOST_ALLOWLIST where the configuration is (``key_admin``).
    "notify_url": lambda value, now: check_form(value, field_wording("notify_url")),
    "notify_events": lambda value, now: parse_events(value), "strict_input": _strict_input,
    "accounts": _names("accounts", MAX_ACCOUNTS, ACCOUNT_NAME, "BFL account names (GET /v1/accounts lists them), "
                       "or null for any"),
    "region": _region, "name": _name, "daily_credits": _credits, "expires_at": _expires,
    "models": _names("models", MAX_MODELS, MODEL, "BFL model names such as 'flux-2-pro', or null"),
    "max_active": _whole("max_active", 1, 10_000), "max_queued": _whole("max_queued", 1, MAX_QUEUED),
    "requests_per_minute": _whole("requests_per_minute", 1, 100_000),
    # Its own read and item limits, within the bounds of the settings they stand in for.
    "reads_per_minute": _whole("reads_per_minute", 1, MAX_READS_PER_MINUTE),
    "items_per_minute": _whole("items_per_minute", 1, MAX_ITEMS_PER_MINUTE),
    "items_per_day": _whole("items_per_day", 1, MAX_ITEMS_PER_DAY),
    "weight": _whole("weight", 1, MAX_WEIGHT),
    "end_user_limits": end_user_limits,
    "end_user_moderation_limit": _whole("end_user_moderation_limit", 1, 100_000),
}


# A key with no job at BFL and none waiting.
NO_JOBS = KeyJobs()


def present_key(key: AppKey, *, spent_today: float = 0.0, jobs_today: int = 0, jobs: KeyJobs = NO_JOBS,
                secret: str | None = None, notify_secret: str | None = None) -> dict:
    """The key object of the API; with ``secret`` only in the answer that creates it, ``notify_secret`` only in that
    one and a rotation's. ``jobs``: its jobs holding BFL slots (``active``; ``canceled_running``, those of them
    canceled while BFL runs their tasks on) and waiting (``queued``, and how many wait for each reason,
    ``core.wait_reasons``)."""
    shown = {
        "id": key.id, "name": key.name, "prefix": key.prefix,
        "models": list(key.models) if key.models is not None else None,
        "daily_credits": key.daily_credits, "max_active": key.max_active, "max_queued": key.max_queued,
        "requests_per_minute": key.requests_per_minute, "reads_per_minute": key.reads_per_minute,
        "items_per_minute": key.items_per_minute, "items_per_day": key.items_per_day, "weight": key.weight,
        "expires_at": iso(key.expires_at),
        "accounts": list(key.accounts) if key.accounts is not None else None, "region": key.region,
        "created_at": iso(key.created_at), "last_used_at": iso(key.last_used_at), "revoked_at": iso(key.revoked_at),
        "spent_today": spent_today, "jobs_today": jobs_today, "active": jobs.active,
        "canceled_running": jobs.canceled_running, "queued": jobs.queued, "queued_by_reason": dict(jobs.by_reason),
        "notify_url": key.notify_url, "notify_events": list(key.notify_events or ()),
        "notify_secret_rotated_at": iso(key.notify_rotated_at), "strict_input": key.strict_input,
        "end_user_limits": (key.end_user_limits or EndUserLimits()).to_api(),
        "end_user_moderation_limit": key.end_user_moderation_limit,
    }
    if secret is not None:
        shown["key"] = secret
    if notify_secret is not None:
        shown["notify_secret"] = notify_secret
    return shown
