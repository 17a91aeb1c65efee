"""App keys: one bearer token per app, with its own limits and spend (its record: ``fluxhook.store.app_keys``).

A key's secret is ``fhk_<id part>_<43 random characters>`` (256 bits from ``secrets``): shown once, in the
answer that creates it. Only its SHA-256 is kept. A plain hash is enough for a secret of that entropy (no
guess can be tried against it, so a slow password hash buys nothing), and unlike an HMAC keyed from
SECRET_KEY it survives the rotation of SECRET_KEY. The secret names its key's id, so checking it is one
read of that key's record (cached by each process for at most ``CACHE_SECONDS``) and one constant-time
comparison, whatever the number of keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fluxhook.core.accounts import ACCOUNT_NAME, MAX_ACCOUNTS, REGION_NAME, Account, route_for
from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked, ModelNotAllowed, RateLimited, Unauthorized
from fluxhook.core.job import iso
from fluxhook.core.models import MODEL
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle import waits
from fluxhook.store.app_keys import MISSING, REVOKED, AppKey, AppKeys
from fluxhook.store.owners import DEFAULT_WEIGHT

log = logging.getLogger("fluxhook.keys")

if TYPE_CHECKING:
    from fluxhook.core.job import Job
    from fluxhook.services import Services

SECRET_PREFIX = "fhk_"
ID_PREFIX = "key_"
# How long a process trusts a key record it read: revocation and expiry reach every process within it.
CACHE_SECONDS = 0.5
# ``last_used_at`` is written at most this often per key and process.
TOUCH_EVERY = 60.0
# Key ids found to be no key's, remembered as long as a record (at most this many at once, so forged ids cannot
# fill memory): a forged key refused before its body is read costs one read, not a second when it is answered.
MISSES_KEPT = 4096
MAX_NAME = 100
MAX_MODELS = 100
MAX_WEIGHT = 100
_ID_PART = re.compile(r"^[0-9a-f]{16}$")
_LIMITS = ("models", "daily_credits", "max_active", "requests_per_minute", "weight", "expires_at", "accounts", "region")
_CHANGEABLE = ("name", *_LIMITS)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an admin token (``key`` None) or an app key."""

    key: AppKey | None = None

    @property
    def admin(self) -> bool:
        return self.key is None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.id

    def sees(self, job: Job) -> bool:
        """Whether this caller may see the job: an admin sees every job, a key only its own."""
        return self.key is None or job.key_id == self.key.id

    def may_use(self, model: str) -> bool:
        """Whether this caller may submit to ``model``: an admin any, a key those of its ``models`` (all if unset)."""
        return self.key is None or self.key.models is None or model in self.key.models


ADMIN = Caller()


def digest(secret: str) -> str:
    """What is kept of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the shape of a key id (checked before it reaches a Redis key)."""
    return text.startswith(ID_PREFIX) and bool(_ID_PART.fullmatch(text[len(ID_PREFIX):]))


def key_id_in(secret: str) -> str | None:
    """The key id a presented secret names, or None if it is not shaped like one of ours."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    part, sep, rest = secret[len(SECRET_PREFIX):].partition("_")
    if not sep or not rest or not _ID_PART.fullmatch(part):
        return None
    return ID_PREFIX + part


def new_key(values: dict[str, Any], now: float) -> tuple[AppKey, str]:
    """A new key with ``values`` (as ``parse`` gives them) and its secret."""
    part = secrets.token_hex(8)
    secret = f"{SECRET_PREFIX}{part}_{secrets.token_urlsafe(32)}"
    key = AppKey(id=ID_PREFIX + part, prefix=secret[:8], secret_sha256=digest(secret), created_at=now,
                 **{"weight": DEFAULT_WEIGHT, **values})
    return key, secret


# --- the request bodies of POST and PATCH /v1/keys ---------------------------------------------------------

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
        if value is None and name in _LIMITS:
            if name == "weight":
                values["weight"] = DEFAULT_WEIGHT
            else:
                unset.append(name)
            continue
        values[name] = _PARSERS[name](value, now)
    return values, tuple(unset)


def _name(value: Any, now: float) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise InvalidRequest(f"'name' must be a non-empty line of at most {MAX_NAME} printable characters")
    return value.strip()


def _models(value: Any, now: float) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value or len(value) > MAX_MODELS
            or not all(isinstance(m, str) and MODEL.fullmatch(m) for m in value)):
        raise InvalidRequest("'models' must be a non-empty list of BFL model names such as 'flux-2-pro', or null")
    return tuple(dict.fromkeys(value))


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


def _accounts(value: Any, now: float) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value or len(value) > MAX_ACCOUNTS
            or not all(isinstance(a, str) and ACCOUNT_NAME.fullmatch(a) for a in value)):
        raise InvalidRequest("'accounts' must be a non-empty list of BFL account names (GET /v1/accounts lists "
                             "them), or null for any")
    return tuple(dict.fromkeys(value))


def _region(value: Any, now: float) -> str:
    if not isinstance(value, str) or not REGION_NAME.fullmatch(value):
        raise InvalidRequest("'region' must be a region label of the BFL accounts, such as 'eu', or null for any")
    return value


_PARSERS: dict[str, Callable[[Any, float], Any]] = {
    "accounts": _accounts, "region": _region,
    "name": _name, "models": _models, "daily_credits": _credits, "expires_at": _expires,
    "max_active": _whole("max_active", 1, 10_000), "requests_per_minute": _whole("requests_per_minute", 1, 100_000),
    "weight": _whole("weight", 1, MAX_WEIGHT),
}


# --- the key object ----------------------------------------------------------------------------------------

def present_key(key: AppKey, *, spent_today: float = 0.0, jobs_today: int = 0, queued: int = 0, active: int = 0,
                queued_by_reason: dict[str, int] | None = None, secret: str | None = None) -> dict:
    """The key object of the API; with ``secret`` only in the answer that creates it. ``queued`` counts every job of
    the key that waits, ``queued_by_reason`` how many wait for each reason (``core.wait_reasons``)."""
    shown = {
        "id": key.id, "name": key.name, "prefix": key.prefix,
        "models": list(key.models) if key.models is not None else None,
        "daily_credits": key.daily_credits, "max_active": key.max_active,
        "requests_per_minute": key.requests_per_minute, "weight": key.weight, "expires_at": iso(key.expires_at),
        "accounts": list(key.accounts) if key.accounts is not None else None, "region": key.region,
        "created_at": iso(key.created_at), "last_used_at": iso(key.last_used_at), "revoked_at": iso(key.revoked_at),
        "spent_today": spent_today, "jobs_today": jobs_today, "active": active, "queued": queued,
        "queued_by_reason": dict(queued_by_reason or {}),
    }
    if secret is not None:
        shown["key"] = secret
    return shown


# --- checking a presented key --------------------------------------------------------------------------------

def key_refusal(key: AppKey, now: float) -> str | None:
    """Why the key may no longer be used at ``now``, and what to do about it; or None while it may be used."""
    if key.revoked_at is not None:
        return "this app key was revoked, and a revoked key cannot come back: ask an admin of this service for a new key"
    if key.expires_at is not None and now >= key.expires_at:
        return (f"this app key expired at {iso(key.expires_at)}: ask an admin of this service to extend it "
                "or for a new key")
    return None


class KeyResolver:
    """Finds the app key a secret belongs to, for one process: at most one Redis read per key id per
    ``CACHE_SECONDS`` (ids that are no key's too), and a write of ``last_used_at`` at most once per ``TOUCH_EVERY``."""

    def __init__(self, store: AppKeys, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[float, AppKey]] = {}
        self._missing: OrderedDict[str, float] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def caller(self, secret: str) -> Caller | None:
        """The caller this secret makes, or None if it is no key's; Unauthorized for a revoked or expired key."""
        key_id = key_id_in(secret)
        if key_id is None:
            return None
        now = self.clock()
        key = self._record(key_id, now)
        if key is None or not hmac.compare_digest(key.secret_sha256, digest(secret)):
            return None
        why = key_refusal(key, now)
        if why is not None:
            raise Unauthorized(why)
        self._touch(key, now)
        return Caller(key)

    def refuses(self, secret: str) -> bool:
        """Whether ``secret`` makes no caller (no key's, or a revoked or expired key's), judged before the request's
        body is read: the one read ``caller`` then finds cached, and no use recorded."""
        key_id = key_id_in(secret)
        if key_id is None:
            return True
        now = self.clock()
        key = self._record(key_id, now)
        return (key is None or not hmac.compare_digest(key.secret_sha256, digest(secret))
                or key_refusal(key, now) is not None)

    def _record(self, key_id: str, now: float) -> AppKey | None:
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        missed = self._missing.get(key_id)
        if missed is not None and now - missed < CACHE_SECONDS:
            return None
        key = self.store.get(key_id)
        with self._lock:
            if key is None:
                self._cache.pop(key_id, None)
                self._missing[key_id] = now
                self._missing.move_to_end(key_id)
                while len(self._missing) > MISSES_KEPT:
                    self._missing.popitem(last=False)
            else:
                self._missing.pop(key_id, None)
                self._cache[key_id] = (now, key)
        return key

    def _touch(self, key: AppKey, now: float) -> None:
        last = max(key.last_used_at or 0.0, self._touched.get(key.id, 0.0))
        if now - last < TOUCH_EVERY:
            return
        with self._lock:
            if now - self._touched.get(key.id, 0.0) < TOUCH_EVERY:
                return
            self._touched[key.id] = now
        self.store.touch(key.id, now)


# --- the limits of a submission ----------------------------------------------------------------------------

def check_model(caller: Caller, model: str) -> None:
    """ModelNotAllowed unless the caller's key may use ``model``."""
    if not caller.may_use(model):
        raise ModelNotAllowed(f"this app key may use only {', '.join(caller.key.models)}; ask an admin to add {model!r}")


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


def described(svc: Services, keys: list[AppKey], now: float) -> list[dict]:
    """The key objects of ``keys`` with today's spend and jobs, their jobs at BFL and those waiting, and why they
    wait (at most four reads)."""
    today = accounting.utc_day(now)
    counters = svc.store.usage.days([today])[today]
    jobs = waits.of_keys(svc, [k.id for k in keys], {k.id: key_route(svc, k) for k in keys})
    return [present_key(key, spent_today=accounting.from_micro(counters.get(accounting.spent_field(key.id), 0)),
                        jobs_today=reports.jobs_today(counters, key.id), queued=jobs[key.id].queued,
                        active=jobs[key.id].active, queued_by_reason=jobs[key.id].by_reason)
            for key in keys]


# --- what the doctor tells of keys --------------------------------------------------------------------------

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


def credits_left_today(svc: "Services", key: AppKey, now: float) -> float | None:
    """What the key may still spend today under its ``daily_credits`` (never below 0); None without that limit."""
    if key.daily_credits is None:
        return None
    spent = accounting.from_micro(reports.spent_today(svc, now, key_id=key.id))
    return max(0.0, round(key.daily_credits - spent, 6))


# --- the admin's use cases: /v1/keys and the dashboard's Keys page -----------------------------------

def key_route(svc: "Services", key: AppKey) -> str | None:
    """The route of the key's jobs that name no account (None when its accounts and region match none now)."""
    try:
        return route_for(svc.config.accounts, key_accounts=key.accounts, key_region=key.region)
    except InvalidRequest:
        return None


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


def create_key(svc: "Services", body: Any, now: float) -> tuple[AppKey, str]:
    """A new app key from a request's ``body`` (``InvalidRequest`` for a bad one), and its secret, shown this once."""
    values, _ = parse(body, creating=True, now=now)
    check_routing(svc.config.accounts, values)
    key, secret = new_key(values, now)
    svc.store.app_keys.create(key)
    log.info("app key created", extra={"key_id": key.id, "key_name": key.name})
    return key, secret


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
    outcome = svc.store.app_keys.change(key_id, values, unset)
    if outcome == MISSING:
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    if outcome == REVOKED:
        raise KeyRevoked("this app key is revoked; create a new one")
    log.info("app key changed", extra={"key_id": key_id, "fields": sorted([*values, *unset])})
    return find_key(svc, key_id)
