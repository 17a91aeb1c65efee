"""The account's balance (``fluxhook.credits.balance``): asked of BFL at most once per interval across every worker,
again soon after an account's jobs end (once for a burst), at once when there is no reading of the BFL configured,
and kept in Redis naming the BFL it was read from. Two worker processes, ``/metrics``, and a stack after jobs and a
restart: tests/e2e/credits/test_balance.py and test_balance_after_jobs.py."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.processes import free_port
from fluxhook.core.accounts import CoolingReason
from fluxhook.core.holds import REREAD_LOCK
from fluxhook.core.outcomes import RefreshOutcome
from fluxhook.credits import balance
from fluxhook.credits.balance import MAX_STALE, QUIET, Watch, due, look
from fluxhook.services import build_services
from fluxhook.store.effects import AccountJobEnded
from fluxhook.store.keys import KEYS
from fluxhook.store.usage import Balance
from helpers import commands_during

DB = 14


def _on(sim, make_services, **env):
    return make_services(DB, BFL_API_BASE=sim.url, API_HOST_ALLOWLIST=sim.url.removeprefix("http://"), **env)


def _ended(svc, account: str, *ends: float) -> None:
    """Jobs ``account`` ran ended at ``ends``: the effect their ends' steps carry (``accounting.on_end``)."""
    svc.store.effects.apply([AccountJobEnded(account, at) for at in ends])


def _commands(svc, action) -> list[str]:
    """What ``action`` sends Redis, less a connection's own start (its SELECT)."""
    return [c["command"] for c in commands_during(svc.redis, DB, action) if not c["command"].startswith("SELECT")]


def test_many_workers_at_once_ask_bfl_once(redis_server, own_sim, spy, make_services):
    first = _on(own_sim, make_services, BFL_CREDITS_REFRESH_SECONDS="300")
    workers = [first] + [build_services(first.config) for _ in range(3)]
    own_sim.settings(credits=1234.5)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: balance.refresh(workers[n % 4]), range(16)))
    assert sorted(outcomes).count(RefreshOutcome.REFRESHED) == 1 and own_sim.stats()["credits_requests"] == 1
    kept = first.store.usage.balances([first.config.accounts[0]])[0]
    assert kept.credits == 1234.5 and abs(kept.at - time.time()) < 30
    # Held for the whole interval: no other run asks BFL within it.
    assert 300 - 5 <= first.redis.ttl(KEYS.balance_lock()) <= 300
    assert balance.refresh(first) == RefreshOutcome.SKIPPED and own_sim.stats()["credits_requests"] == 1


def test_a_worker_checks_five_times_per_interval_so_a_refresh_comes_at_most_a_fifth_late():
    assert balance.check_every(300) == 60
    assert balance.check_every(3) == 1


def test_a_failed_refresh_keeps_the_last_balance_and_waits_for_the_next_interval(own_sim, spy, make_services):
    svc = _on(own_sim, make_services)
    account = svc.config.accounts[0]
    svc.store.usage.set_balance(50.0, time.time() - 600, ttl=3600, account=account)
    svc.redis.set(KEYS.balance_lock(), "another worker", ex=1)  # the interval's lock, about to lapse
    time.sleep(1.1)
    svc_wrong = build_services(dataclasses.replace(svc.config, bfl_api_key="wrong-key"))
    # Another key's reading is none to it: asked at once, and BFL refuses the key.
    assert balance.refresh(svc_wrong) == RefreshOutcome.FAILED
    assert svc.store.usage.balances([account])[0].credits == 50.0
    assert balance.refresh(svc) == RefreshOutcome.SKIPPED  # the failed one held the interval


def test_without_an_api_key_nothing_is_asked(own_sim, make_services):
    svc = make_services(DB, BFL_API_KEY="", BFL_API_BASE=own_sim.url)
    assert balance.refresh(svc) == RefreshOutcome.SKIPPED and own_sim.stats()["credits_requests"] == 0


def test_only_configured_accounts_have_a_balance_and_several_add_up_only_when_all_are_known(make_services):
    svc = make_services(DB)
    default = svc.config.accounts[0]
    now = time.time()
    # A balance kept for an account no longer configured (the stack ran with BFL_ACCOUNTS=eu,us before).
    svc.store.usage.set_balance(999_944.29, now, ttl=3600, account=dataclasses.replace(default, name="eu"))
    assert balance.kept(svc) == {"default": None}
    svc.store.usage.set_balance(1_000.0, now - 30, ttl=3600, account=default)
    assert balance.kept(svc) == {"default": Balance(1_000.0, now - 30)}

    assert balance.together([Balance(1_000.0, now - 30), Balance(250.5, now - 5)]) == Balance(1_250.5, now - 30)
    assert balance.together([Balance(1_000.0, now), None]) is None  # a sum short of an account is no one's
    assert balance.together([]) is None


def test_a_reading_kept_replaces_an_older_one_never_a_later_one_and_credits_end_a_402s_cooldown(own_sim, make_services):
    svc = _on(own_sim, make_services)
    account = svc.config.accounts[0]
    now = time.time()
    # A doctor's read kept first, and a worker's asked before it arriving after it: the doctor's stays.
    balance.keep(svc, account, Balance(990.0, now))
    balance.keep(svc, account, Balance(1_000.0, now - 5))
    assert svc.store.usage.balances([account])[0] == Balance(990.0, now)

    # Read now (as `fluxhook doctor` does): BFL's figure, kept as the reading, and the account takes tasks again.
    svc.store.cooldowns.cool("default", now + 30, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    own_sim.settings(credits=12.5)
    reading = balance.read(svc, account)
    assert reading.credits == 12.5 and reading.at >= now
    balance.keep(svc, account, reading)
    assert svc.store.usage.balances([account])[0] == reading
    assert svc.store.cooldowns.of("default", time.time()) is None


def test_a_reading_names_the_bfl_it_was_read_from_never_its_key(make_services):
    svc = make_services(DB)
    account = svc.config.accounts[0]
    now = time.time()
    balance.keep(svc, account, Balance(999_216.0, now))
    kept = {k.decode(): v.decode() for k, v in svc.redis.hgetall(KEYS.bfl_balance()).items()}
    assert kept == {"credits": "999216.0", "at": repr(now), "bfl": account.bfl_digest}
    assert account.api_key not in kept["bfl"] and len(kept["bfl"]) == 32
    # Another endpoint, or another key at the same one: another BFL, whose digest differs, and whose views show nothing.
    moved, rekeyed = (dataclasses.replace(account, api_base="http://127.0.0.1:1"),
                      dataclasses.replace(account, api_key="another-key"))
    assert len({account.bfl_digest, moved.bfl_digest, rekeyed.bfl_digest}) == 3
    assert dataclasses.replace(account, api_base=account.api_base + "/").bfl_digest == account.bfl_digest
    for other in (moved, rekeyed):
        assert svc.store.usage.balances([other])[0] is None
        assert balance.kept(svc, [other]) == {"default": None}
    # The new BFL's reading replaces the old one's, though read before it (the old one's is none of the new one's).
    balance.keep(svc, moved, Balance(999_815.0, now - 1))
    assert svc.store.usage.balances([moved])[0] == Balance(999_815.0, now - 1)
    assert svc.store.usage.balances([account])[0] is None


def test_after_a_restart_on_another_bfl_its_reading_is_read_again_at_once_though_the_interval_is_held(
        own_sim, make_services):
    svc = _on(own_sim, make_services)
    account = svc.config.accounts[0]
    own_sim.settings(credits=999_815.0)
    # What the stack kept before its restart: the previous BFL's reading, and the interval's lock it held.
    svc.store.usage.set_balance(999_216.0, time.time(), ttl=3600,
                                account=dataclasses.replace(account, api_base="http://127.0.0.1:1"))
    svc.redis.set(KEYS.balance_lock(), "the worker before the restart", ex=300)
    assert balance.kept(svc) == {"default": None}  # never shown as this BFL's

    assert look(svc, Watch()) == RefreshOutcome.REFRESHED  # a worker's first look
    assert balance.kept(svc)["default"].credits == 999_815.0 and own_sim.stats()["credits_requests"] == 1
    assert not svc.redis.exists(KEYS.reread_lock())  # given back once the reading was kept


def test_a_reading_is_due_once_the_last_end_is_quiet_or_the_first_end_not_read_is_max_stale():
    watch, read_at, t = Watch(), 1_000.0, 2_000.0
    reading = Balance(5.0, read_at)
    assert due(watch, "eu", None, None, t)  # none kept, or another BFL's: at once
    assert not due(watch, "eu", reading, None, t) and not due(watch, "eu", reading, read_at - 1, t)
    # A burst of ends: read once the last one is QUIET old, not at each.
    assert not due(watch, "eu", reading, t, t)
    assert not due(watch, "eu", reading, t + 3, t + 3)
    assert not due(watch, "eu", reading, t + 3, t + 3 + QUIET - 0.1)
    assert due(watch, "eu", reading, t + 3, t + 3 + QUIET)
    # Ends that never stop: read once the first end seen out of date is MAX_STALE old.
    watch = Watch()
    for now in range(int(t), int(t + MAX_STALE)):
        assert not due(watch, "eu", reading, now, now)
    assert due(watch, "eu", reading, t + MAX_STALE, t + MAX_STALE)
    # A reading taken meanwhile, out of date again: its own MAX_STALE starts.
    later = Balance(4.0, t + MAX_STALE + 1)
    assert not due(watch, "eu", later, t + MAX_STALE + 2, t + MAX_STALE + 2)
    assert due(watch, "eu", later, t + 2 * MAX_STALE + 2, t + 2 * MAX_STALE + 2)
    assert watch.seen == {"eu": later.at}


def test_after_jobs_end_one_read_once_they_are_quiet_and_a_look_at_idle_is_one_command(own_sim, make_services):
    svc = _on(own_sim, make_services)
    own_sim.settings(credits=1_000.0)
    watch = Watch()
    assert look(svc, watch, interval=True) == RefreshOutcome.REFRESHED  # the first reading
    assert own_sim.stats()["credits_requests"] == 1
    assert look(svc, watch) == RefreshOutcome.SKIPPED  # it sees the reading it took
    assert _commands(svc, lambda: look(svc, watch)) == [f"HGETALL {KEYS.balance_ended}"]

    own_sim.settings(credits=909.0)  # BFL charged the burst's jobs
    burst = time.time()
    ends = [burst - 0.005 + n * 0.001 for n in range(5)]
    _ended(svc, "default", *ends)
    assert look(svc, watch, burst + 1) == RefreshOutcome.SKIPPED  # not quiet yet
    assert look(svc, watch, ends[-1] + QUIET) == RefreshOutcome.REFRESHED
    assert own_sim.stats()["credits_requests"] == 2 and balance.kept(svc)["default"].credits == 909.0
    assert balance.kept(svc)["default"].at > burst
    # Read: no more asks, and a look is one command again.
    assert look(svc, watch, burst + 2 * QUIET) == RefreshOutcome.SKIPPED and own_sim.stats()["credits_requests"] == 2
    assert _commands(svc, lambda: look(svc, watch)) == [f"HGETALL {KEYS.balance_ended}"]


def test_a_due_read_is_asked_by_one_process_and_a_failed_one_again_once_its_lock_lapses(make_services):
    down = f"127.0.0.1:{free_port()}"  # a BFL that does not answer
    svc = make_services(DB, BFL_API_BASE=f"http://{down}", API_HOST_ALLOWLIST=down)
    account = svc.config.accounts[0]
    svc.store.usage.set_balance(50.0, time.time() - 60, ttl=3600, account=account)
    _ended(svc, "default", time.time() - QUIET)
    watches = [Watch() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda watch: look(svc, watch), watches))
    assert sorted(outcomes) == [RefreshOutcome.FAILED] + [RefreshOutcome.SKIPPED] * 3  # one process asked
    assert svc.store.usage.balances([account])[0].credits == 50.0  # the last reading stays
    assert look(svc, watches[0]) == RefreshOutcome.SKIPPED  # its lock holds: BFL is not asked again yet
    assert REREAD_LOCK - 2 < svc.redis.ttl(KEYS.reread_lock()) <= REREAD_LOCK
    svc.redis.delete(KEYS.reread_lock())  # REREAD_LOCK s later
    assert look(svc, watches[0]) == RefreshOutcome.FAILED


@pytest.fixture()
def two_accounts(own_sim, sim, make_services):
    hosts = ",".join(s.url.removeprefix("http://") for s in (own_sim, sim))
    return make_services(DB, BFL_ACCOUNTS="eu,us", BFL_EU_API_KEY="sim-dev-key", BFL_EU_API_BASE=sim.url,
                         BFL_US_API_KEY="sim-dev-key", BFL_US_API_BASE=own_sim.url, API_HOST_ALLOWLIST=hosts)


def test_each_account_is_read_again_after_its_own_jobs_end(two_accounts, own_sim):
    svc = two_accounts
    eu, us = svc.config.accounts
    before = time.time() - 60
    for account in (eu, us):
        svc.store.usage.set_balance(100.0, before, ttl=3600, account=account)
    own_sim.settings(credits=75.0)
    watch = Watch()
    assert look(svc, watch) == RefreshOutcome.SKIPPED  # both read, none since: nothing asked
    _ended(svc, "us", time.time() - QUIET)
    assert look(svc, watch) == RefreshOutcome.REFRESHED
    shown = balance.kept(svc)
    assert shown["us"].credits == 75.0 and shown["eu"] == Balance(100.0, before)  # only us's jobs ended
    assert own_sim.stats()["credits_requests"] == 1


def test_an_account_cooling_for_want_of_credits_is_still_read_on_its_recheck(own_sim, make_services):
    svc = _on(own_sim, make_services)
    account = svc.config.accounts[0]
    now = time.time()
    balance.keep(svc, account, Balance(0.0, now - 40))
    svc.redis.set(KEYS.balance_lock(), "held", ex=300)
    svc.store.cooldowns.cool("default", now + 5, CoolingReason.INSUFFICIENT_CREDITS, lasting=True)
    own_sim.settings(credits=0.0)
    assert balance.refresh(svc, now) == RefreshOutcome.REFRESHED  # its recheck lock, not the interval's
    assert svc.store.cooldowns.of("default", now + 10).reason == CoolingReason.INSUFFICIENT_CREDITS
    own_sim.settings(credits=20.0)
    svc.redis.delete(KEYS.recheck_lock("default"))
    assert balance.refresh(svc, time.time()) == RefreshOutcome.REFRESHED
    assert svc.store.cooldowns.of("default", time.time()) is None
