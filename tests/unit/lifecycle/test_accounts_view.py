"""The accounts as ``GET /v1/accounts``, the dashboard and ``fluxhook accounts`` show them
(``fluxhook.lifecycle.accounts_view``), over a real Redis: in flight by pool, queued by route, cooldowns, balance and
spend; never a key."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from fluxhook.core.accounts import DEFAULT_POOL, Account, CoolingReason
from fluxhook.credits.accounting import account_spent_field, to_micro, utc_day
from fluxhook.lifecycle.accounts_view import accounts_now, callers_balance
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.app_keys import AppKey
from fluxhook.store.usage import Balance

DB = 5
ACCOUNTS = {"BFL_ACCOUNTS": "eu,us,spare",
            "BFL_EU_API_KEY": "eu-secret-key", "BFL_EU_API_BASE": "https://api.eu.example", "BFL_EU_REGION": "eu",
            "BFL_US_API_KEY": "us-secret-key", "BFL_US_API_BASE": "https://api.us.example/v1", "BFL_US_REGION": "us",
            "BFL_SPARE_API_KEY": "spare-secret-key", "BFL_SPARE_API_BASE": "https://spare.example",
            "API_HOST_ALLOWLIST": "api.eu.example,api.us.example,spare.example",
            "BFL_MODEL_LIMITS": "flux-kontext-max=4"}


@pytest.fixture()
def svc(make_services):
    return make_services(DB, **ACCOUNTS)


def _account(svc, name: str) -> Account:
    """Account ``name``, as configured or as it would be (``default``, no longer configured here)."""
    return next((a for a in svc.config.accounts if a.name == name), Account(name, "key", "https://api.bfl.ai"))


def _in_line(svc, pool: str, job_id: str, route: str | None = None, owner: str = "admin") -> None:
    keys = svc.store.keys
    svc.redis.zadd(keys.line(pool), {f"{owner}:{job_id}": 0})
    if route is not None:
        svc.redis.hset(keys.routes, job_id, route)


def test_idle_accounts_in_their_order_without_keys(svc):
    now = time.time()

    shown = accounts_now(svc, now)

    assert shown == [
        {"name": "eu", "region": "eu", "host": "api.eu.example", "in_flight": {}, "canceled_running": 0, "queued": 0,
         "cooling": None, "balance": None, "balance_at": None, "spent_today": 0.0},
        {"name": "us", "region": "us", "host": "api.us.example", "in_flight": {}, "canceled_running": 0, "queued": 0,
         "cooling": None, "balance": None, "balance_at": None, "spent_today": 0.0},
        {"name": "spare", "region": None, "host": "spare.example", "in_flight": {}, "canceled_running": 0, "queued": 0,
         "cooling": None, "balance": None, "balance_at": None, "spent_today": 0.0},
    ]
    assert "secret-key" not in json.dumps(shown)


def test_in_flight_by_model_cooling_balance_and_spend(svc):
    now = time.time()
    keys = svc.store.keys
    # Two models share the default pool; a job deleted between the view's two reads has no model left to name.
    for job_id, model in (("job_a", "flux-2-pro"), ("job_b", "flux-dev"), ("job_c", "flux-kontext-max"),
                          ("job_d", "flux-2-pro")):
        svc.redis.hset(keys.job(job_id), "model", model)
    svc.redis.zadd(keys.slots(DEFAULT_POOL, "eu"), {"job_a": now, "job_b": now, "job_d": now, "job_gone": now})
    svc.redis.zadd(keys.slots("flux-kontext-max", "eu"), {"job_c": now})
    svc.store.cooldowns.cool("us", now + 30, CoolingReason.UNAVAILABLE)
    svc.store.cooldowns.cool("spare", now + 30, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    svc.store.usage.set_balance(1250.5, now, ttl=60, account=_account(svc, "eu"))
    svc.store.usage.set_balance(0.0, now, ttl=60, account=_account(svc, "spare"))
    svc.redis.hincrby(keys.usage(utc_day(now)), account_spent_field("eu"), to_micro(42.25))

    eu, us, spare = accounts_now(svc, now)

    assert eu["in_flight"] == {"flux-2-pro": 2, "flux-dev": 1, "flux-kontext-max": 1, "unknown": 1}
    assert (eu["cooling"], eu["balance"], eu["spent_today"]) == (None, 1250.5, 42.25)
    assert eu["balance_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))  # when it was read from eu
    assert us["balance"] is None and us["balance_at"] is None
    assert us["in_flight"] == {} and us["cooling"]["reason"] == "unavailable"
    assert us["cooling"]["until"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 30))
    assert (spare["cooling"]["reason"], spare["balance"], spare["spent_today"]) == ("insufficient_credits", 0.0, 0.0)


def test_queued_counts_the_jobs_in_line_each_account_may_take(svc):
    _in_line(svc, DEFAULT_POOL, "job_any")                      # no route of its own: any account
    _in_line(svc, DEFAULT_POOL, "job_star", "*")
    _in_line(svc, "flux-kontext-max", "job_eu_region", "r:eu")
    _in_line(svc, DEFAULT_POOL, "job_named", "a:us,spare", owner="key_0123456789abcdef")
    _in_line(svc, DEFAULT_POOL, "job_gone", "a:elsewhere")      # an account since removed: none of these

    queued = {a["name"]: a["queued"] for a in accounts_now(svc, time.time())}

    assert queued == {"eu": 3, "us": 3, "spare": 3}


def test_queued_without_routes_is_one_round_trip_of_line_sizes(svc):
    for n in range(5):
        _in_line(svc, DEFAULT_POOL, f"job_{n}")

    assert svc.store.slots.queued_by_route() == {"*": 5}
    assert [a["queued"] for a in accounts_now(svc, time.time())] == [5, 5, 5]


def test_queued_reads_long_lines_in_batches(svc):
    for n in range(7):
        _in_line(svc, DEFAULT_POOL, f"job_{n}", "r:us" if n % 2 else None)

    assert svc.store.slots.queued_by_route(batch=2) == {"*": 4, "r:us": 3}


def test_a_callers_balance_is_its_accounts_each_read_from_that_account(svc):
    now = time.time()
    svc.store.usage.set_balance(1_000_000.0, now - 60, ttl=60, account=_account(svc, "eu"))
    svc.store.usage.set_balance(500.0, now - 5, ttl=60, account=_account(svc, "us"))
    # A balance kept for "default", an account not configured here: no caller's credits count it.
    svc.store.usage.set_balance(999_944.29, now, ttl=60, account=_account(svc, "default"))
    admin = Caller()
    assert callers_balance(svc, admin) is None  # spare's not read yet: a sum without it is no one's balance
    svc.store.usage.set_balance(0.0, now - 10, ttl=60, account=_account(svc, "spare"))
    assert callers_balance(svc, admin) == Balance(1_000_500.0, now - 60)
    # An app key sees only the accounts its jobs may go through: by name, or by region.
    key = AppKey(id="key_0123456789abcdef", name="shop", prefix="fhk_0123", secret_sha256="0" * 64)
    assert callers_balance(svc, Caller(replace(key, accounts=("us",)))) == Balance(500.0, now - 5)
    assert callers_balance(svc, Caller(replace(key, region="eu"))) == Balance(1_000_000.0, now - 60)


def test_a_reading_of_another_bfl_is_shown_nowhere(svc):
    now = time.time()
    eu = _account(svc, "eu")
    # Kept while eu's endpoint was another (a restart moved it): no view shows that BFL's figure as eu's.
    svc.store.usage.set_balance(999_216.0, now, ttl=60, account=replace(eu, api_base="https://api.old.example"))
    svc.store.usage.set_balance(500.0, now, ttl=60, account=_account(svc, "us"))
    shown = {a["name"]: a for a in accounts_now(svc, now)}
    assert (shown["eu"]["balance"], shown["eu"]["balance_at"], shown["us"]["balance"]) == (None, None, 500.0)
    key = AppKey(id="key_0123456789abcdef", name="shop", prefix="fhk_0123", secret_sha256="0" * 64)
    assert callers_balance(svc, Caller(replace(key, accounts=("eu",)))) is None
    svc.store.usage.set_balance(999_815.0, now - 1, ttl=60, account=eu)  # its own BFL's, though read before the other
    assert callers_balance(svc, Caller(replace(key, accounts=("eu",)))) == Balance(999_815.0, now - 1)
