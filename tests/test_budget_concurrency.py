"""The daily credit limit under concurrency (SPEC §6): 40 submissions at once over two web processes,
cheap tasks first then expensive ones, end at most one job's price above BFL_DAILY_CREDIT_LIMIT.

The attack this stops: cheap tasks lower a per-job average first, then expensive ones all pass the
check at once on that average (limit 100, 40 flux-2-flex at 4096 x 4096: a spend of about 1,000)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conftest import API
from credit_helpers import budget_stack
from devtools.processes import wait_until
from fluxhook.store.usage import UsageStore
from simulator import pricing

DB = 9
LIMIT = 100
MODEL = "flux-2-flex"
CHEAP = {"width": 1024, "height": 1024}  # 5 credits
EXPENSIVE = {"width": 4096, "height": 4096}  # 80 credits
PRICE_OF_THE_DEAREST = pricing.price(MODEL, EXPENSIVE)["cost"]


@pytest.fixture(scope="module")
def fronts(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-40")),
                      DB, LIMIT) as (running, second):
        yield running, API(running.base_url), second


def test_forty_submissions_at_once_end_at_most_one_jobs_price_above_the_limit(fronts, sim):
    running, first, second = fronts
    bodies = [dict(CHEAP, prompt=f"cheap {n}") for n in range(20)] + \
             [dict(EXPENSIVE, prompt=f"expensive {n}") for n in range(20)]

    def post(n: int):
        return (first, second)[n % 2].post("/v1/jobs", json={"model": MODEL, "input": bodies[n]})

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(post, range(40)))
    assert {r.status_code for r in answers} <= {202, 402}, [r.text for r in answers if r.status_code not in (202, 402)]
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in answers if r.status_code == 402)
    created = [r.json()["id"] for r in answers if r.status_code == 202]
    assert created

    held = UsageStore(redis.Redis.from_url(running.env["REDIS_URL"]))

    def settled() -> bool:
        # Nothing reserved is nothing between its check and BFL's answer; with the day's credits spent,
        # nothing can be sent any more (the jobs still queued wait for the next day).
        spent = first.get("/v1/usage").json()["spent_today"]
        return held.reserved(time.time()) == 0 and spent >= LIMIT

    wait_until(settled, timeout=90, interval=0.2)
    jobs = [first.job(job_id) for job_id in created]
    sent = [job for job in jobs if job["bfl_id"]]
    spent = first.get("/v1/usage").json()["spent_today"]
    assert LIMIT <= spent <= LIMIT + PRICE_OF_THE_DEAREST, spent
    assert spent == pytest.approx(sum(job["cost"]["credits"] for job in sent))
    assert sim.stats()["submitted"] == len(sent)
    assert any(job["cost"]["credits"] == PRICE_OF_THE_DEAREST for job in sent)  # expensive ones went too
    assert all(job["status"] == "queued" for job in jobs if not job["bfl_id"])
