"""The daily credit limit under concurrency: 40 submissions at once over two web processes,
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
from credit_helpers import budget_stack, start_a_fresh_day
from devtools.processes import wait_until
from fluxhook.store.usage import UsageStore
from simulator import pricing

DB = 9
LIMIT = 100
MODEL = "flux-2-flex"
CHEAP = {"width": 1024, "height": 1024}  # 5 credits
EXPENSIVE = {"width": 4096, "height": 4096}  # the most flux-2-flex makes: 21 credits
PRICE_OF_THE_DEAREST = pricing.price(MODEL, EXPENSIVE)["cost"]


@pytest.fixture(scope="module")
def fronts(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-40")),
                      DB, LIMIT) as (running, second):
        yield running, API(running.base_url), second


@pytest.fixture()
def day(fronts, sim):
    """A fresh day: no spend, no reservation, no job."""
    running, first, _ = fronts
    start_a_fresh_day(running, first)
    return fronts


def _at_once(fronts, sim, bodies: list[dict]) -> None:
    running, first, second = fronts

    def post(n: int):
        return (first, second)[n % 2].post("/v1/jobs", json={"model": MODEL, "input": bodies[n]})

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(post, range(len(bodies))))
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

    try:
        wait_until(settled, timeout=90, interval=0.2)
    finally:
        held.connection.close()
    jobs = first.get("/v1/jobs", params={"limit": 100}).json()["jobs"]  # this test's, all of them
    sent = [job for job in jobs if job["bfl_id"]]
    spent = first.get("/v1/usage").json()["spent_today"]
    print(f"limit {LIMIT}: {len(created)} accepted, {len(bodies) - len(created)} refused, {len(sent)} sent, "
          f"spent {spent}")
    # What was sent, beside what was spent: too many sends, or a price counted twice.
    costs = sorted(job["cost"]["credits"] for job in sent)
    assert LIMIT <= spent <= LIMIT + PRICE_OF_THE_DEAREST, (spent, sum(costs), costs, sim.stats()["submitted"])
    assert spent == pytest.approx(sum(job["cost"]["credits"] for job in sent))
    assert sim.stats()["submitted"] == len(sent)
    assert any(job["cost"]["credits"] == PRICE_OF_THE_DEAREST for job in sent)  # expensive ones went too
    assert all(job["status"] == "queued" for job in jobs if not job["bfl_id"])


def test_forty_submissions_at_once_end_at_most_one_jobs_price_above_the_limit(day, sim):
    # Cheap tasks first, then expensive ones, each reserving the catalog's bound. The cheap ones together
    # cost less than the limit, so expensive ones must be sent too, whatever order they arrive in.
    _at_once(day, sim, [dict(CHEAP, prompt=f"cheap {n}") for n in range(12)] +
             [dict(EXPENSIVE, prompt=f"expensive {n}") for n in range(28)])


def test_the_issues_attack_cheap_tasks_priced_first_then_forty_expensive_at_once(day, sim):
    # As reported: 12 credits spent on cheap tasks (which lowered an average per job), then 40 at 4096 x 4096.
    _, first, _ = day
    for n in range(2):
        cheap = {"model": MODEL, "input": dict(CHEAP, prompt=f"first {n}")}
        assert first.post("/v1/jobs", json=cheap).status_code == 202
    _at_once(day, sim, [dict(EXPENSIVE, prompt=f"expensive {n}") for n in range(40)])
