"""``GET /v1/usage`` through the Procfile's processes: the totals after a run, the range asked, bad ranges, the bearer
token. The counting rules and the counters in Redis: tests/unit/credits/test_usage.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from conftest import API
from helpers import assert_error


def _row(api: API, model: str) -> dict | None:
    today = datetime.now(timezone.utc).date().isoformat()
    body = api.get("/v1/usage").json()
    return next((row for row in body["days"] if row["model"] == model and row["date"] == today), None)


def test_usage_totals_after_a_run(api, sim):
    before = api.get("/v1/usage").json()
    model = "flux-usage-run"
    with ThreadPoolExecutor(6) as pool:
        jobs = list(pool.map(lambda n: api.submit(f"run {n}" + (" [error]" if n == 0 else ""), model=model), range(6)))
    ended = [api.wait_for(job["id"], timeout=30) for job in jobs]
    assert sorted(job["status"] for job in ended) == ["failed"] + ["stored"] * 5
    assert _row(api, model) == {"date": datetime.now(timezone.utc).date().isoformat(), "model": model, "key_id": None,
                                "jobs": 6, "stored": 5, "failed": 1, "canceled": 0, "credits": 6.0}
    after = api.get("/v1/usage").json()
    assert round(after["total_credits"] - before["total_credits"], 6) == 6.0
    assert round(after["spent_today"] - before["spent_today"], 6) == 6.0
    assert after["daily_limit"] is None


def test_usage_answers_the_range_it_was_asked(api):
    today = datetime.now(timezone.utc).date()
    body = api.get("/v1/usage").json()
    assert (body["from"], body["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    year = api.get("/v1/usage", params={"from": (today - timedelta(days=365)).isoformat(), "to": today.isoformat()})
    assert year.status_code == 200 and year.json()["from"] == (today - timedelta(days=365)).isoformat()
    past = api.get("/v1/usage", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert past["days"] == [] and past["total_credits"] == 0


@pytest.mark.parametrize("params, says", [
    ({"from": "last week"}, "'from' must be a date as YYYY-MM-DD"),
    ({"to": "2026-02-30"}, "'to' is not a calendar date"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "is after"),
    ({"from": "2024-01-01", "to": "2025-12-31"}, "spans 731 days; at most 366"),
])
def test_bad_ranges_are_a_400_that_says_why(api, params, says):
    error = assert_error(api.get("/v1/usage", params=params), 400, "invalid_request")
    assert says in error["message"]


def test_usage_needs_the_bearer_token(stack):
    assert assert_error(API(stack.base_url, token="wrong-token-123").get("/v1/usage"), 401, "unauthorized")
