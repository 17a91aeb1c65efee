"""An account that failed a submission cools down for every process (fluxhook/lifecycle/steps/cooling.py), on a real Redis:
a 402 until its balance reads above zero, a 5xx for BFL's Retry-After or a backoff growing with its failures in a
row (refusals of submissions sent before it cooled count once), a spent daily limit until the next UTC day. How the
dispatch skips a cooling account: tests/unit/store/; over HTTP: tests/e2e/accounts/test_routing_and_failover.py."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from fluxhook import metrics
from fluxhook.core.accounts import COOL_BASE, NO_CREDITS_RECHECK, CoolingReason
from fluxhook.core.errors import BFLAccountDown, InsufficientCredits
from fluxhook.lifecycle.steps.cooling import cool_after, cool_for_the_day
from fluxhook.store.cooldowns import ACCOUNT_WIDE

DB = 15  # no other unit test uses it; make_services flushes it before and after
ACCOUNTS = {"BFL_ACCOUNTS": "eu,us",
            "BFL_EU_API_KEY": "eu-secret-key", "BFL_EU_API_BASE": "https://api.eu.example",
            "BFL_US_API_KEY": "us-secret-key", "BFL_US_API_BASE": "https://api.us.example",
            "API_HOST_ALLOWLIST": "api.eu.example,api.us.example"}


@pytest.fixture()
def svc(make_services):
    return make_services(DB, **ACCOUNTS)


def _accounts(svc):
    return svc.config.accounts


def _strikes(svc, account: str) -> int:
    return int(svc.redis.get(svc.store.keys.strikes(ACCOUNT_WIDE, account)) or 0)


def _counted(svc, **labels) -> float:
    (field, _), = metrics.counted("fluxhook_account_cooldowns", **labels).increments
    return float(svc.store.metrics_fields().get(field.encode(), 0))


def test_an_account_out_of_credits_cools_until_its_balance_reads_above_zero(svc):
    eu, us = _accounts(svc)
    now = time.time()

    until = cool_after(svc, eu, InsufficientCredits("BFL answered 402"))

    assert now + NO_CREDITS_RECHECK - 1 <= until <= time.time() + NO_CREDITS_RECHECK
    cooling = svc.store.cooldowns.of("eu", now + 3600)  # long past its next look: it lasts until lifted
    assert cooling is not None and cooling.reason == CoolingReason.INSUFFICIENT_CREDITS
    assert svc.store.cooldowns.of("us", now) is None  # only the account that failed
    assert _counted(svc, account="eu", reason="insufficient_credits") == 1
    assert svc.store.cooldowns.lift("eu", CoolingReason.INSUFFICIENT_CREDITS, time.time())
    assert svc.store.cooldowns.of("eu", time.time()) is None


def test_a_failing_account_cools_for_a_backoff_and_refusals_sent_before_it_cooled_count_once(svc):
    eu, _ = _accounts(svc)
    now = time.time()

    first = cool_after(svc, eu, BFLAccountDown("BFL answered 502"))

    assert now + COOL_BASE / 2 <= first <= time.time() + COOL_BASE  # the first failure's backoff, half-jittered
    assert svc.store.cooldowns.of("eu", now).reason == CoolingReason.UNAVAILABLE
    # Other submissions of the same moment come back refused too: the same failure, already counted.
    assert cool_after(svc, eu, BFLAccountDown("BFL answered 502")) == first
    assert _strikes(svc, "eu") == 1
    assert _counted(svc, account="eu", reason="bfl_unavailable") == 1


def test_bfls_retry_after_sets_the_cooldown_and_extends_a_running_one(svc):
    eu, _ = _accounts(svc)
    cool_after(svc, eu, BFLAccountDown("BFL answered 502"))
    now = time.time()

    until = cool_after(svc, eu, BFLAccountDown("BFL answered 503", retry_after=120, out_of_capacity=True))

    assert now + 120 <= until <= time.time() + 120
    assert svc.store.cooldowns.of("eu", now + 60).until == until
    # A shorter Retry-After never shortens it.
    assert cool_after(svc, eu, BFLAccountDown("BFL answered 503", retry_after=5)) == until


def test_an_account_whose_own_daily_credits_are_spent_rests_until_the_next_utc_day(svc):
    _, us = _accounts(svc)
    midnight = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)

    until = cool_for_the_day(svc, us)

    assert until == midnight.timestamp()
    cooling = svc.store.cooldowns.of("us", time.time())
    assert (cooling.until, cooling.reason) == (until, CoolingReason.DAILY_CREDITS)
    assert svc.store.cooldowns.of("us", until + 1) is None  # the new day takes tasks again
