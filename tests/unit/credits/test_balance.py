"""The account's balance (``fluxhook.credits.balance``): asked of BFL at most once per interval across every worker,
kept in Redis, shown by ``/metrics`` with the credits spent."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from conftest import Simulator, service_env
from devtools.processes import free_port, python, start_process, stop_process, wait_until
from devtools.stack import procfile_commands, start_simulator
from fluxhook.core.outcomes import Outcome
from fluxhook.credits import balance
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS

DB = 14
INTERVAL = 1


@pytest.fixture()
def own_sim(tmp_path):
    """A simulator of this test's own: no other process asks it for credits."""
    port = free_port()
    process = start_simulator(port, str(tmp_path / "simulator.log"))
    yield Simulator(f"http://127.0.0.1:{port}")
    stop_process(process)


def _env(redis_server, sim: Simulator, spy_port: int, **overrides) -> dict[str, str]:
    env = service_env(redis_server, sim, spy_port, free_port(), **overrides)
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    return env


def test_many_workers_at_once_ask_bfl_once(redis_server, own_sim, spy, make_services):
    first = make_services(DB, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"),
                          BFL_CREDITS_REFRESH_SECONDS="300")
    workers = [first] + [build_services(first.config) for _ in range(3)]
    own_sim.settings(credits=1234.5)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: balance.refresh(workers[n % 4]), range(16)))
    assert sorted(outcomes).count(Outcome.REFRESHED) == 1 and own_sim.stats()["credits_requests"] == 1
    kept = first.store.usage.balance()
    assert kept.credits == 1234.5 and abs(kept.at - time.time()) < 30
    # Held for the whole interval: no other run asks BFL within it.
    assert 300 - 5 <= first.redis.ttl(KEYS.balance_lock) <= 300
    assert balance.refresh(first) == Outcome.SKIPPED and own_sim.stats()["credits_requests"] == 1


def test_a_worker_checks_five_times_per_interval_so_a_refresh_comes_at_most_a_fifth_late():
    assert balance.check_every(300) == 60
    assert balance.check_every(3) == 1


def test_a_failed_refresh_keeps_the_last_balance_and_waits_for_the_next_interval(own_sim, spy, make_services):
    svc = make_services(DB, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"))
    svc.store.usage.set_balance(50.0, time.time() - 600, ttl=3600)
    svc_wrong = build_services(svc.config.__class__(**{**svc.config.__dict__, "bfl_api_key": "wrong-key"}))
    assert balance.refresh(svc_wrong) == Outcome.FAILED
    assert svc.store.usage.balance().credits == 50.0
    assert balance.refresh(svc) == Outcome.SKIPPED  # the failed one held the interval


def test_without_an_api_key_nothing_is_asked(own_sim, make_services):
    svc = make_services(DB, BFL_API_KEY="", BFL_API_BASE=own_sim.url)
    assert balance.refresh(svc) == Outcome.SKIPPED and own_sim.stats()["credits_requests"] == 0


def test_two_worker_processes_refresh_once_per_interval(redis_server, own_sim, spy, tmp_path):
    env = dict(os.environ)
    env.update(_env(redis_server, own_sim, spy.port, BFL_API_BASE=own_sim.url,
                    API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"), BFL_CREDITS_REFRESH_SECONDS=str(INTERVAL)))
    env["PATH"] = os.pathsep.join([str(Path(python()).parent), env.get("PATH", "")])  # the Procfile's python
    connection = redis.Redis.from_url(env["REDIS_URL"])
    connection.flushdb()
    own_sim.settings(credits=777.25)
    started = time.monotonic()
    workers = [start_process(["sh", "-c", "exec " + procfile_commands()["worker"]], env,
                             log_path=str(tmp_path / f"worker{n}.log")) for n in range(2)]
    try:
        wait_until(lambda: own_sim.stats()["credits_requests"] >= 4, timeout=60, interval=0.1,
                   message="four refreshes of the balance")
        asked, elapsed = own_sim.stats()["credits_requests"], time.monotonic() - started
        # Each worker's clock queues the refresh every second; the lock lets one through per second.
        assert asked <= elapsed / INTERVAL + 1, (asked, elapsed)
        assert float(connection.hget(KEYS.bfl_balance, "credits")) == 777.25
    finally:
        for worker in workers:
            stop_process(worker)
        connection.flushdb()


def test_metrics_show_the_balance_and_the_credits_spent(api, sim, stack):
    job = api.submit("counted in the metrics", model="flux-2-max")

    def scraped() -> str | None:
        text = requests.get(stack.base_url + "/metrics", timeout=10).text
        return text if "fluxhook_bfl_credits " in text else None

    text = wait_until(scraped, timeout=30, interval=0.2, message="a worker to have read the balance")
    assert job["cost"]["credits"] == 7.0
    assert 'fluxhook_credits_spent_total{key="",model="flux-2-max"}' in text
    assert "fluxhook_credits_spent_today " in text
    assert "fluxhook_daily_credit_limit" not in text  # no BFL_DAILY_CREDIT_LIMIT on the session's stack
    assert "# TYPE fluxhook_bfl_credits gauge" in text
