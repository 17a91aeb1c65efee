"""The daily credit budget (``BFL_DAILY_CREDIT_LIMIT``) through processes: the worker stops at start on a bad limit, and
the Procfile's processes with a second web process refuse over HTTP exactly at the limit. The rules and the
reservation in Redis: tests/unit/credits/test_budget.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conftest import API
from credit_helpers import budget_stack as running_budget_stack
from devtools.processes import ROOT
from fluxhook.cli import operator_commands
from fluxhook.credits import accounting
from fluxhook.store.keys import KEYS
from helpers import assert_error

STACK_DB = 8
LIMIT = 12  # credits: four flux-2-pro tasks of one megapixel at 3 credits each


def test_the_worker_stops_at_start_on_a_bad_limit_naming_it():
    env = {"PATH": os.environ.get("PATH", ""), "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "k" * 32,
           "API_TOKENS": "token-123456", "BFL_DAILY_CREDIT_LIMIT": "-3"}
    result = subprocess.run([sys.executable, "-m", "worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert len([line for line in result.stderr.splitlines() if "BFL_DAILY_CREDIT_LIMIT" in line]) == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def budget_stack(redis_server, simulator, _spies, tmp_path_factory):
    with running_budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-stack")),
                              STACK_DB, LIMIT) as both:
        yield both


@pytest.fixture()
def web(budget_stack, sim):
    """Both web front doors, with today's spend at zero."""
    running, second = budget_stack
    connection = redis.Redis.from_url(running.env["REDIS_URL"])
    today = accounting.utc_day(time.time())
    connection.delete(KEYS.usage(today), KEYS.usage(accounting.utc_day(time.time() - 86400)), KEYS.budget_held)
    return API(running.base_url), second


def _post(api: API, prompt: str):
    # One megapixel: the catalog bounds it at 3 credits, the simulator charges 3.
    return api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": 1000, "height": 1000}})


def _count(api: API) -> int:
    return len(api.get("/v1/jobs", params={"limit": 100}).json()["jobs"])


def test_the_budget_refuses_exactly_when_the_days_spend_reaches_the_limit(web, sim):
    api, _ = web
    accepted = [_post(api, f"in budget {n}") for n in range(4)]
    assert [r.status_code for r in accepted] == [202] * 4
    assert [r.json()["cost"]["credits"] for r in accepted] == [3.0] * 4
    jobs_before = _count(api)
    refused = _post(api, "past the limit")
    error = assert_error(refused, 402, "budget_exceeded")
    assert "12 of BFL_DAILY_CREDIT_LIMIT 12" in error["message"]
    assert _count(api) == jobs_before and sim.stats()["submitted"] == 4
    assert 'fluxhook_submissions_total{account="",outcome="budget_exceeded"}' in api.get("/metrics").text
    body = api.get("/v1/usage").json()
    assert (body["spent_today"], body["daily_limit"]) == (12.0, 12.0)


def test_two_web_processes_submitting_at_once_never_pass_the_limit(web, sim):
    api, second = web
    assert _post(api, "spends 3").status_code == 202
    jobs_before = _count(api)
    fronts = [api, second] * 8
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: _post(fronts[n], f"at once {n}"), range(16)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [202] * 3 + [402] * 13, codes
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in answers if r.status_code == 402)
    for response in (r for r in answers if r.status_code == 202):
        api.wait_for(response.json()["id"], "submitted", "ready", "stored")
    assert sim.stats()["submitted"] == 4 and _count(api) == jobs_before + 3
    assert api.get("/v1/usage").json()["spent_today"] == LIMIT


def test_metrics_and_the_doctor_show_the_spend_against_the_limit(web, budget_stack):
    api, _ = web
    for n in range(4):
        assert _post(api, f"spend {n}").status_code == 202
    text = api.get("/metrics").text
    assert "fluxhook_credits_spent_today 12.0" in text and "fluxhook_daily_credit_limit 12.0" in text
    assert 'fluxhook_credits_spent_total{account="default",key="",model="flux-2-pro"}' in text
    checks = {check.name: check for check in operator_commands.run_checks(operator_commands.Settings(dict(budget_stack[0].env)))}
    assert checks["budget"].state == operator_commands.WARN
    assert checks["budget"].detail.startswith("spent today 12 of BFL_DAILY_CREDIT_LIMIT 12 credits (100%); "
                                              "new submissions are refused until 00:00 UTC")
