"""The account's balance (``fluxhook.credits.balance``): asked of BFL at most once per interval across every worker,
and kept in Redis. Two worker processes, and ``/metrics``: tests/e2e/credits/test_balance.py."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

from fluxhook.core.accounts import CoolingReason
from fluxhook.core.outcomes import RefreshOutcome
from fluxhook.credits import balance
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from fluxhook.store.usage import Balance

DB = 14


def test_many_workers_at_once_ask_bfl_once(redis_server, own_sim, spy, make_services):
    first = make_services(DB, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"),
                          BFL_CREDITS_REFRESH_SECONDS="300")
    workers = [first] + [build_services(first.config) for _ in range(3)]
    own_sim.settings(credits=1234.5)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: balance.refresh(workers[n % 4]), range(16)))
    assert sorted(outcomes).count(RefreshOutcome.REFRESHED) == 1 and own_sim.stats()["credits_requests"] == 1
    kept = first.store.usage.balance(account="default")
    assert kept.credits == 1234.5 and abs(kept.at - time.time()) < 30
    # Held for the whole interval: no other run asks BFL within it.
    assert 300 - 5 <= first.redis.ttl(KEYS.balance_lock()) <= 300
    assert balance.refresh(first) == RefreshOutcome.SKIPPED and own_sim.stats()["credits_requests"] == 1


def test_a_worker_checks_five_times_per_interval_so_a_refresh_comes_at_most_a_fifth_late():
    assert balance.check_every(300) == 60
    assert balance.check_every(3) == 1


def test_a_failed_refresh_keeps_the_last_balance_and_waits_for_the_next_interval(own_sim, spy, make_services):
    svc = make_services(DB, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"))
    svc.store.usage.set_balance(50.0, time.time() - 600, ttl=3600, account="default")
    svc_wrong = build_services(dataclasses.replace(svc.config, bfl_api_key="wrong-key"))
    assert balance.refresh(svc_wrong) == RefreshOutcome.FAILED
    assert svc.store.usage.balance(account="default").credits == 50.0
    assert balance.refresh(svc) == RefreshOutcome.SKIPPED  # the failed one held the interval


def test_without_an_api_key_nothing_is_asked(own_sim, make_services):
    svc = make_services(DB, BFL_API_KEY="", BFL_API_BASE=own_sim.url)
    assert balance.refresh(svc) == RefreshOutcome.SKIPPED and own_sim.stats()["credits_requests"] == 0


def test_only_configured_accounts_have_a_balance_and_several_add_up_only_when_all_are_known(make_services):
    svc = make_services(DB)
    now = time.time()
    # A balance kept for an account no longer configured (the stack ran with BFL_ACCOUNTS=eu,us before).
    svc.store.usage.set_balance(999_944.29, now, ttl=3600, account="eu")
    assert balance.kept(svc) == {"default": None}
    svc.store.usage.set_balance(1_000.0, now - 30, ttl=3600, account="default")
    assert balance.kept(svc) == {"default": Balance(1_000.0, now - 30)}

    assert balance.together([Balance(1_000.0, now - 30), Balance(250.5, now - 5)]) == Balance(1_250.5, now - 30)
    assert balance.together([Balance(1_000.0, now), None]) is None  # a sum short of an account is no one's
    assert balance.together([]) is None


def test_a_reading_kept_replaces_an_older_one_never_a_later_one_and_credits_end_a_402s_cooldown(own_sim, make_services):
    svc = make_services(DB, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"))
    account = svc.config.accounts[0]
    now = time.time()
    # A doctor's read kept first, and a worker's asked before it arriving after it: the doctor's stays.
    balance.keep(svc, account, Balance(990.0, now))
    balance.keep(svc, account, Balance(1_000.0, now - 5))
    assert svc.store.usage.balance(account="default") == Balance(990.0, now)

    # Read now (as `fluxhook doctor` does): BFL's figure, kept as the reading, and the account takes tasks again.
    svc.store.cooldowns.cool("default", now + 30, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    own_sim.settings(credits=12.5)
    reading = balance.read(svc, account)
    assert reading.credits == 12.5 and reading.at >= now
    balance.keep(svc, account, reading)
    assert svc.store.usage.balance(account="default") == reading
    assert svc.store.cooldowns.of("default", time.time()) is None
