"""BFL accounts (pure): each an endpoint and a key with its own limits, credits and webhook secret; the pools its tasks
in flight count against, with each pool's limit; and the rule of which accounts a job may be sent through (its route).

Every task counts toward an account's ``max_active`` (``BFL_MAX_ACTIVE``); a model named in ``BFL_MODEL_LIMITS`` also
has a pool of its own with its own, smaller limit (the catalog's: BFL's 6 for flux-kontext-max, 5 for flux-3-video)
and its own line, so a model waiting for its own limit never holds up the others.

``BFL_ACCOUNTS`` names them; without it there is one, ``default``, made of the ``BFL_*`` settings. An
app key bound to ``accounts`` or a ``region``, and a job naming an ``account``, narrow the accounts a
job may use. That narrowing is the job's route, a short string read only by the slot scripts
(``store/lua/routes.lua``; ``Slots.accounts_for`` asks them), so residency holds inside the one atomic step that
picks the account:

- ``*``: any account;
- ``r:<region>``: the accounts labelled with that region;
- ``a:<name>,<name>``: exactly those accounts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fluxhook.core.backoff import backoff_delay
from fluxhook.core.catalog import SHIPPED_CATALOG
from fluxhook.core.errors import Forbidden, InvalidRequest
from fluxhook.core.hosts import HostPattern
from fluxhook.core.job import iso

DEFAULT_ACCOUNT = "default"
ANY_ROUTE = "*"
# Account names and region labels: what fits an environment variable's name once upper-cased.
ACCOUNT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
REGION_NAME = ACCOUNT_NAME
MAX_ACCOUNTS = 32
# A cooldown without BFL's Retry-After: growing with the failures in a row, up to a cap short enough that jobs
# waiting for the only accounts they may use go out soon after it recovers.
COOL_BASE, COOL_CAP = 2.0, 15.0
# How often an account without credits has its balance read again: its cooldown ends when it reads above zero.
NO_CREDITS_RECHECK = 30.0


# --- Pools ---

DEFAULT_POOL = "default"
KONTEXT_MAX_POOL = "flux-kontext-max"
# BFL_MODEL_LIMITS' default: the models the catalog says BFL limits below the account's.
DEFAULT_MODEL_LIMITS: tuple[tuple[str, int], ...] = SHIPPED_CATALOG.limits()
# The pools under the default BFL_MODEL_LIMITS.
POOLS = (DEFAULT_POOL, *(model for model, _ in DEFAULT_MODEL_LIMITS))


def pools(model_limits: tuple[tuple[str, int], ...] = DEFAULT_MODEL_LIMITS) -> tuple[str, ...]:
    """Every pool: the default one, then one per model with a limit of its own."""
    return (DEFAULT_POOL, *(model for model, _ in model_limits))


def pool_for(model: str | None, model_limits: tuple[tuple[str, int], ...] = DEFAULT_MODEL_LIMITS) -> str:
    """The slot pool a model's tasks count against."""
    return model if model and any(model == named for named, _ in model_limits) else DEFAULT_POOL


class Limits(Protocol):
    """What ``pool_limit`` reads of a ``Config`` (which reads its defaults from here)."""

    @property
    def bfl_max_active(self) -> int: ...

    @property
    def bfl_model_limits(self) -> tuple[tuple[str, int], ...]: ...


def pool_limit(config: Limits, pool: str) -> int:
    """How many of the pool's tasks may be in flight at once: never more than BFL_MAX_ACTIVE."""
    return limit_in(config.bfl_max_active, config.bfl_model_limits, pool)


def limit_in(max_active: int, model_limits: tuple[tuple[str, int], ...], pool: str) -> int:
    """How many of ``pool``'s tasks one account may have in flight, under its ``max_active`` and ``model_limits``."""
    for model, limit in model_limits:
        if model == pool:
            return min(limit, max_active)
    return max_active


# --- Accounts ---

class CoolingReason(StrEnum):
    """Why an account takes no tasks for a while."""

    UNAVAILABLE = "unavailable"  # BFL answered 503 or another 5xx, or could not be reached
    INSUFFICIENT_CREDITS = "insufficient_credits"  # BFL answered 402: until the balance reads above zero
    DAILY_CREDITS = "daily_credit_limit"  # its BFL_<NAME>_DAILY_CREDIT_LIMIT is spent: until the next UTC day


@dataclass(frozen=True)
class Cooling:
    """An account's cooldown: until when (epoch seconds; for credits, the next look at the balance), and why."""

    until: float
    reason: str

    def to_api(self) -> dict:
        return {"until": iso(self.until), "reason": self.reason}


def cooldown_seconds(retry_after: float | None, failures: int) -> float:
    """How long an account cools after its ``failures``-th failure in a row: BFL's Retry-After when it sent
    one, else a backoff; a further failure extends a cooldown, never shortens it (``lua/account_cool.lua``)."""
    return retry_after if retry_after is not None else backoff_delay(failures, base=COOL_BASE, cap=COOL_CAP)


@dataclass(frozen=True)
class Account:
    """One BFL account (organisation) at one endpoint."""

    name: str
    api_key: str
    api_base: str
    region: str | None = None
    max_active: int = 24
    # (model, limit) pairs: a slot pool of its own per model, within max_active.
    model_limits: tuple[tuple[str, int], ...] = ()
    # BFL's webhook secret for tasks submitted elsewhere (``/webhooks/bfl``), the current one first.
    webhook_secrets: tuple[str, ...] = ()
    daily_credit_limit: float | None = None
    api_host_allowlist: tuple[HostPattern, ...] = ()

    def pool_limit(self, pool: str) -> int:
        """How many of ``pool``'s tasks this account may have in flight."""
        return limit_in(self.max_active, self.model_limits, pool)

    @property
    def host(self) -> str:
        """The endpoint's host, as shown (never the key)."""
        return self.api_base.split("://", 1)[-1].split("/", 1)[0]

    @property
    def bfl_digest(self) -> str:
        """Which BFL this account is, as a digest of its endpoint and its key's fingerprint (never the key): a balance
        reading names the BFL it was read from, so one kept before the endpoint or key changed is not this account's
        (``credits.balance``)."""
        fingerprint = hashlib.sha256(self.api_key.encode()).hexdigest()
        return hashlib.sha256(f"{self.api_base.rstrip('/')}\n{fingerprint}".encode()).hexdigest()[:32]

    def __repr__(self) -> str:  # the key must never reach a log line through a repr
        return f"Account(name={self.name!r}, api_base={self.api_base!r}, region={self.region!r})"


def env_prefix(name: str) -> str:
    """``client-a`` → ``BFL_CLIENT_A_``: where the account's settings are read from."""
    return f"BFL_{name.upper().replace('-', '_')}_"


def parse_names(text: str) -> tuple[str, ...]:
    """``eu,us,client-a`` as account names; ValueError saying what is wrong."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("must name at least one account, such as eu,us")
    for name in names:
        if not ACCOUNT_NAME.fullmatch(name):
            raise ValueError(f"{name[:40]!r} is not an account name (lowercase letters, digits and '-', "
                             "at most 32 characters)")
    if len(set(names)) != len(names):
        raise ValueError("an account is named twice")
    if len(names) > MAX_ACCOUNTS:
        raise ValueError(f"at most {MAX_ACCOUNTS} accounts")
    return tuple(names)


def route_for(accounts: tuple[Account, ...], *, key_accounts: tuple[str, ...] | None = None,
              key_region: str | None = None, account: str | None = None, finetuned: bool = False) -> str:
    """The route of a job: the accounts its key lets it use (``key_accounts`` names, or ``key_region``), narrowed
    to the ``account`` the job names. ``Forbidden`` when the job names an account its key may not use;
    ``InvalidRequest`` for an account that does not exist, a key whose accounts are all gone, or a finetuned
    model that could go to more than one endpoint (a finetune lives in one place: name the account)."""
    names = {a.name for a in accounts}
    allowed = [a for a in accounts if (key_accounts is None or a.name in key_accounts)
               and (key_region is None or a.region == key_region)]
    if account is not None:
        if account not in names:
            raise InvalidRequest(f"'account': there is no account {account[:40]!r}; GET /v1/accounts lists them")
        if account not in {a.name for a in allowed}:
            raise Forbidden(f"this key may not use account {account!r}", code="account_not_allowed")
        return f"a:{account}"
    if not allowed:
        raise InvalidRequest("this key's accounts or region match no account configured now; "
                             "change the key's 'accounts' or 'region'")
    if finetuned and len({a.api_base for a in allowed}) > 1:
        raise InvalidRequest("a finetuned model runs only at the endpoint where it was trained: "
                             "name its 'account' (GET /v1/accounts lists them)")
    if key_accounts is not None:
        return "a:" + ",".join(sorted(a.name for a in allowed))
    if key_region is not None:
        return f"r:{key_region}"
    return ANY_ROUTE


def pooled_limits(accounts: tuple[Account, ...]) -> tuple[tuple[str, int], ...]:
    """The models with a limit of their own at any account, each once (the pools every account has; an account
    without a limit for one allows its whole max_active there)."""
    merged: dict[str, int] = {}
    for account in accounts:
        for model, limit in account.model_limits:
            merged[model] = max(limit, merged.get(model, 0))
    return tuple(merged.items())


def is_finetuned(model: str) -> bool:
    """BFL's finetuned endpoints (``flux-pro-1.1-ultra-finetuned`` and the like)."""
    return "finetuned" in model
