"""The BFL accounts as the operator sees them, over real HTTP against the Procfile's processes and one
simulator serving two accounts, ``eu`` and ``us``: ``GET /v1/accounts`` lists both (never a key, admin tokens only),
and once ``eu``'s switch answers 503 and a job was sent its way, shows it cooling; ``/metrics``, the dashboard's
accounts panel and ``fluxhook accounts`` say the same."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import redis
import requests

from cli_helpers import run_cli
from conftest import API, API_TOKEN, service_env
from devtools.processes import free_port, wait_until
from devtools.stack import Stack
from fluxhook.store.keys import KEYS
from helpers import assert_error, sign_in
from key_helpers import make_key

DB = 11  # a database of this module's stack alone (the unit tests that use it flush it before and after)
NAMES = ("eu", "us")


@pytest.fixture(scope="module")
def accounts_stack(redis_server, simulator, _spies, tmp_path_factory):
    """The Procfile's processes over two accounts of one simulator; the stack, and each account by name."""
    var_dir = Path(tmp_path_factory.mktemp("accounts-stack"))
    env = dict(os.environ)
    # The session simulator's one account is left out: the stack starts a simulator of the two accounts.
    env.update({k: v for k, v in service_env(redis_server, simulator, _spies[0].port, free_port(),
                                             STORAGE_URL=f"file://{var_dir / 'images'}",
                                             BFL_CREDITS_REFRESH_SECONDS="1").items()
                if k not in ("BFL_API_KEY", "BFL_API_BASE")})
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=var_dir, accounts=NAMES)
    running.start()
    yield running
    running.stop()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


def _switch(account, **settings) -> None:
    response = requests.post(f"{account.base}/_sim/settings", json=settings, timeout=10)
    response.raise_for_status()


def _accounts(api: API) -> dict[str, dict]:
    response = api.get("/v1/accounts")
    assert response.status_code == 200, response.text
    return {a["name"]: a for a in response.json()["accounts"]}


def test_both_accounts_are_listed_and_only_for_admins(accounts_stack):
    admin = API(accounts_stack.base_url)
    sims = accounts_stack.sim_accounts

    response = admin.get("/v1/accounts")
    listed = response.json()["accounts"]

    assert [a["name"] for a in listed] == list(NAMES)
    for account in listed:
        assert set(account) == {"name", "region", "host", "in_flight", "canceled_running", "queued", "cooling",
                                "balance", "balance_at", "spent_today"}
        assert (account["region"], account["host"]) == (account["name"], sims[account["name"]].host)
    for sim in sims.values():
        assert sim.key not in response.text  # never a key
    _, app = make_key(admin)
    assert_error(app.get("/v1/accounts"), 403, "forbidden")
    assert_error(requests.get(accounts_stack.base_url + "/v1/accounts", timeout=10), 401, "unauthorized")


def test_in_flight_counts_each_accounts_tasks_by_model(accounts_stack):
    admin = API(accounts_stack.base_url)
    # Two models of the one default pool, and a model with a pool of its own: counted by model, not by pool.
    jobs = [admin.post("/v1/jobs", json={"model": model, "input": {"prompt": f"[pending] by model {n}"}}).json()
            for n, model in enumerate(("flux-2-pro", "flux-2-pro", "flux-dev", "flux-kontext-max"))]
    try:
        def by_model():
            counted: dict[str, int] = {}
            for account in _accounts(admin).values():
                for model, n in account["in_flight"].items():
                    counted[model] = counted.get(model, 0) + n
            return counted if sum(counted.values()) == len(jobs) else None

        counted = wait_until(by_model, timeout=30, interval=0.2, message="the jobs sent")
        assert counted == {"flux-2-pro": 2, "flux-dev": 1, "flux-kontext-max": 1}
    finally:
        for job in jobs:
            admin.post(f"/v1/jobs/{job['id']}/cancel")
    # BFL has no cancel: the canceled tasks run on there, and hold their slots, until BFL ends them.
    shown = _accounts(admin).values()
    assert sum(a["canceled_running"] for a in shown) == len(jobs) == sum(sum(a["in_flight"].values()) for a in shown)
    for job in map(admin.job, (job["id"] for job in jobs)):
        requests.post(f"{accounts_stack.sim_accounts[job['account']].base}/_sim/tasks/{job['bfl_id']}/complete",
                      json={"outcome": "ready"}, timeout=10).raise_for_status()
    wait_until(lambda: all(not a["in_flight"] and not a["canceled_running"] for a in _accounts(admin).values()),
               timeout=30, interval=0.2, message="the canceled jobs' slots given back once BFL ended their tasks")


def test_an_account_that_refused_shows_cooling_everywhere(accounts_stack):
    """Needs the dispatch of docs/accounts.md (core, merged): a job goes to the least busy account, ties to the first (eu),
    and one refused with 503 cools that account and goes through the other. Jobs are submitted until one was sent
    through eu, so the test holds however the dispatch breaks ties."""
    admin = API(accounts_stack.base_url)
    eu = accounts_stack.sim_accounts["eu"]
    _switch(eu, refuse=503, refuse_retry_after=120)  # long enough to be seen cooling by every reader below
    jobs: list[dict] = []
    try:
        def eu_cooling():
            cooling = _accounts(admin)["eu"]["cooling"]
            if cooling is None and len(jobs) < 10:
                jobs.append(admin.submit(f"[pending] accounts {len(jobs)}"))
            return cooling

        cooling = wait_until(eu_cooling, timeout=30, interval=0.2, message="eu to cool down after its 503")
        assert cooling["reason"] == "unavailable" and cooling["until"].endswith("Z")
        # The worker reads each account's balance (BFL_CREDITS_REFRESH_SECONDS=1): eu's too, its switch is for tasks.
        accounts = wait_until(lambda: (lambda a: a if a["us"]["balance"] is not None else None)(_accounts(admin)),
                              timeout=30, interval=0.2, message="a worker to read the balances")
        assert accounts["us"]["cooling"] is None
        # A job that eu refused went through us: its JSON names the account.
        try:
            through_us = wait_until(lambda: next((j for j in (admin.job(j["id"]) for j in jobs)
                                                  if j["account"] == "us"), None),
                                    timeout=30, interval=0.2, message="a job sent through us")
        except TimeoutError:
            # What each job shows, and what the worker said: this has timed out once on a loaded machine.
            shown = [{k: v for k, v in admin.job(j["id"]).items() if k in ("id", "status", "account", "waiting",
                                                                           "bfl_id", "error")} for j in jobs]
            log = (accounts_stack.var_dir / "worker.log").read_text()[-4000:]
            raise AssertionError(f"no job went through us: {shown}\n{_accounts(admin)}\n{log}") from None
        assert through_us["status"] != "failed"

        metrics = admin.get("/metrics").text
        assert 'fluxhook_bfl_account_cooling{account="eu",reason="unavailable"} 1.0' in metrics
        assert 'account="us"' not in _lines(metrics, "fluxhook_bfl_account_cooling{")
        assert 'fluxhook_bfl_slots_in_use{account="eu",pool="default"}' in metrics
        assert 'fluxhook_bfl_credits{account="us"}' in metrics

        session, _ = sign_in(accounts_stack.base_url)
        page = session.get(accounts_stack.base_url + "/", timeout=10).text
        assert 'id="accounts"' in page and 'data-account="us"' in page
        assert '<tr data-account="eu" class="cooling">' in page and "cooling: BFL unavailable, until" in page
        assert all(sim.key not in page for sim in accounts_stack.sim_accounts.values())

        table = run_cli("accounts", "--url", accounts_stack.base_url, "--token", API_TOKEN)
        assert table.returncode == 0, table.stderr
        rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
        assert "cooling: unavailable until" in rows["eu"] and "takes tasks" in rows["us"]
        as_json = run_cli("accounts", "--json", "--url", accounts_stack.base_url, "--token", API_TOKEN)
        assert [a["name"] for a in json.loads(as_json.stdout)["accounts"]] == list(NAMES)
        assert all(sim.key not in table.stdout + as_json.stdout for sim in accounts_stack.sim_accounts.values())
    finally:
        _switch(eu, refuse=None, refuse_retry_after=None)


def test_one_balance_per_account_everywhere_each_read_from_that_account(accounts_stack):
    admin = API(accounts_stack.base_url)
    eu, us = (accounts_stack.sim_accounts[name] for name in NAMES)
    _switch(eu, credits=1_000_000)
    _switch(us, credits=2_500.5)
    # What a "default" account's worker kept before the stack ran with BFL_ACCOUNTS: no longer any account's.
    redis.Redis.from_url(accounts_stack.env["REDIS_URL"]).hset(
        KEYS.bfl_balance(), mapping={"credits": "999944.29", "at": repr(time.time())})
    try:
        accounts = wait_until(lambda: (lambda a: a if (a["eu"]["balance"], a["us"]["balance"]) == (1e6, 2_500.5)
                                       else None)(_accounts(admin)),
                              timeout=30, interval=0.2, message="a worker to read each account's balance")
        assert all(accounts[name]["balance_at"].endswith("Z") for name in NAMES)

        # BFL's GET /v1/credits: an admin's accounts added up; a key bound to us, us's alone.
        assert admin.get("/v1/credits").json() == {"credits": 1_002_500.5}
        _, app = make_key(admin, accounts=["us"])
        assert app.get("/v1/credits").json() == {"credits": 2_500.5}

        metrics = admin.get("/metrics").text
        assert 'fluxhook_bfl_credits{account="us"} 2500.5' in metrics
        assert 'fluxhook_bfl_credits_read_timestamp_seconds{account="eu"}' in metrics
        assert 'account="default"' not in _lines(metrics, "fluxhook_bfl_credits")

        # The dashboard's spend panel and accounts panel, and `fluxhook accounts`: the same figures, written alike.
        session, _ = sign_in(accounts_stack.base_url)
        page = session.get(accounts_stack.base_url + "/", timeout=10).text
        assert '<div data-balance="eu"><strong>eu</strong> 1,000,000 credits<div class="sub">read ' in page
        assert '<div data-balance="us"><strong>us</strong> 2,500.50 credits<div class="sub">read ' in page
        assert "999,944.29" not in page and "1e+06" not in page
        table = run_cli("accounts", "--url", accounts_stack.base_url, "--token", API_TOKEN)
        rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
        assert "1,000,000 (read " in rows["eu"] and "2,500.50 (read " in rows["us"], table.stdout
        assert "e+0" not in table.stdout
    finally:
        _switch(eu, credits=None)
        _switch(us, credits=None)


def _lines(text: str, prefix: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith(prefix))
