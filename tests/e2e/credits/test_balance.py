"""The account's balance (``fluxhook.credits.balance``) through processes: two worker processes refresh it once per
interval, and ``/metrics`` shows it with the credits spent. The rules in-process: tests/unit/credits/test_balance.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis
import requests

from conftest import Simulator, service_env
from devtools.processes import free_port, python, start_process, stop_process, wait_until
from devtools.stack import procfile_commands
from fluxhook.store.keys import KEYS

DB = 14
INTERVAL = 1


def _env(redis_server, sim: Simulator, spy_port: int, **overrides) -> dict[str, str]:
    env = service_env(redis_server, sim, spy_port, free_port(), **overrides)
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    return env


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
        assert float(connection.hget(KEYS.bfl_balance(), "credits")) == 777.25
    finally:
        for worker in workers:
            stop_process(worker)
        connection.flushdb()


def test_metrics_show_the_balance_and_the_credits_spent(api, sim, stack):
    job = api.submit("counted in the metrics", model="flux-2-max")

    spent = 'fluxhook_credits_spent_total{account="default",key="",model="flux-2-max"}'

    def scraped() -> str | None:
        text = requests.get(stack.base_url + "/metrics", timeout=10, headers=api.http.headers).text
        return text if 'fluxhook_bfl_credits{account="default"} ' in text and spent in text else None

    # The balance once a worker read it; the credits spent once the sending process wrote its counts (every 5 s).
    text = wait_until(scraped, timeout=30, interval=0.2, message="a worker to have read the balance, and the count")
    assert job["cost"]["credits"] == 7.0
    assert "fluxhook_credits_spent_today " in text
    assert "fluxhook_daily_credit_limit" not in text  # no BFL_DAILY_CREDIT_LIMIT on the session's stack
    assert "# TYPE fluxhook_bfl_credits gauge" in text
