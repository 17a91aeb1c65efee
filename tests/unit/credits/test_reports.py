"""The reports over the usage counters (``fluxhook.credits.reports``): ``GET /v1/usage``'s date range, its rows per
day, model and app key, today's spend, latency quantiles and the overview, from counters in real Redis."""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest

from credit_helpers import finish_job, submit_job
from fluxhook.core.errors import InvalidRequest
from fluxhook.credits import accounting, reports
from fluxhook.store.keys import KEYS

DB = 11
TODAY = date(2026, 11, 21)


# --- the date range ------------------------------------------------------------------------------

def test_the_range_is_the_last_30_days_by_default():
    assert reports.parse_range(None, None, TODAY) == (date(2026, 10, 23), TODAY)
    assert reports.parse_range(None, "2026-01-31", TODAY) == (date(2026, 1, 2), date(2026, 1, 31))
    assert reports.parse_range("2026-11-01", None, TODAY) == (date(2026, 11, 1), TODAY)


def test_at_most_366_days():
    assert reports.parse_range("2025-11-21", "2026-11-21", TODAY) == (date(2025, 11, 21), TODAY)
    with pytest.raises(InvalidRequest, match="spans 367 days; at most 366"):
        reports.parse_range("2025-11-20", "2026-11-21", TODAY)
    with pytest.raises(InvalidRequest, match="spans"):
        reports.parse_range("2000-01-01", None, TODAY)


@pytest.mark.parametrize("first, last, message", [
    ("yesterday", None, "'from' must be a date as YYYY-MM-DD"),
    ("20261101", None, "'from' must be a date as YYYY-MM-DD"),
    (None, "2026-11-1", "'to' must be a date as YYYY-MM-DD"),
    (None, "2026-02-30", "'to' is not a calendar date"),
    ("2026-13-01", None, "'from' is not a calendar date"),
    ("２０２６-11-01", None, "'from' must be a date"),
    ("2026-11-21", "2026-11-20", "'from' (2026-11-21) is after 'to' (2026-11-20)"),
])
def test_what_is_not_a_range_is_refused_with_a_clear_message(first, last, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        reports.parse_range(first, last, TODAY)


# --- the counting rules ----------------------------------------------------------------------------

def _at(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


def test_rows_per_day_and_model_and_the_report():
    counters = {"2026-11-20": {"flux-2-pro:jobs": 2, "flux-2-pro:stored": 2, "flux-2-pro:credits": 6_000_000,
                               "spent": 6_000_000},
                "2026-11-21": {"flux-dev:jobs": 1, "flux-dev:failed": 1, "flux-dev:credits": 1_000_000,
                               "flux-2-pro:jobs": 1, "flux-2-pro:credits": 4_500_000, "spent": 5_500_000},
                "2026-11-22": {}}
    body = reports.report(counters, date(2026, 11, 20), date(2026, 11, 22), 5_500_000, 100.0)
    assert body == {"from": "2026-11-20", "to": "2026-11-22", "days": [
        {"date": "2026-11-20", "model": "flux-2-pro", "key_id": None, "jobs": 2, "stored": 2, "failed": 0,
            "canceled": 0, "credits": 6.0},
        {"date": "2026-11-21", "model": "flux-2-pro", "key_id": None, "jobs": 1, "stored": 0, "failed": 0,
            "canceled": 0, "credits": 4.5},
        {"date": "2026-11-21", "model": "flux-dev", "key_id": None, "jobs": 1, "stored": 0, "failed": 1,
            "canceled": 0, "credits": 1.0},
    ], "total_credits": 11.5, "daily_limit": 100.0, "spent_today": 5.5}


def test_usage_rows_split_by_app_key_and_the_admin_tokens_jobs_are_the_rest():
    counters = {"2026-11-21": {"flux-dev:jobs": 3, "flux-dev:credits": 3_000_000, "flux-dev:stored": 2,
                               "flux-dev@key_a:jobs": 2, "flux-dev@key_a:credits": 2_000_000, "flux-dev@key_a:stored": 1,
                               "spent": 3_000_000, "spent@key_a": 2_000_000}}
    everyone = reports.key_rows(counters)
    assert everyone == [
        {"date": "2026-11-21", "model": "flux-dev", "key_id": None, "jobs": 1, "stored": 1, "failed": 0,
            "canceled": 0, "credits": 1.0},
        {"date": "2026-11-21", "model": "flux-dev", "key_id": "key_a", "jobs": 2, "stored": 1, "failed": 0, "canceled": 0,
         "credits": 2.0},
    ]
    assert reports.key_rows(counters, "key_a") == everyone[1:]
    assert reports.key_rows(counters, "key_b") == []
    assert reports.rows(counters) == [
        {"date": "2026-11-21", "model": "flux-dev", "jobs": 3, "stored": 2, "failed": 0, "canceled": 0, "credits": 3.0}]


def test_latency_quantiles_from_the_hourly_buckets():
    counts = {"latency:0.1": 50, "latency:0.25": 40, "latency:1": 10}
    assert reports.latency_quantile(counts, 0.5) == 0.1
    assert reports.latency_quantile(counts, 0.95) == 0.75  # halfway into (0.5, 1]
    assert reports.latency_quantile({}, 0.5) is None
    assert reports.latency_quantile({"latency:+Inf": 3}, 0.5) == accounting.LATENCY_BUCKETS[-1]
    hours = reports.hours_before(_at("2026-11-21", 1), 3)
    assert hours == ["2026-11-20T23", "2026-11-21T00", "2026-11-21T01"]


# --- in Redis, riding on the transitions ------------------------------------------------------------

@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def test_spent_today_is_the_days_spend_from_counters_in_hand_or_redis(svc):
    now = time.time()
    today, yesterday = accounting.utc_day(now), accounting.utc_day(now - 86400)
    svc.redis.hset(KEYS.usage(today), accounting.SPENT, 4_500_000)
    svc.redis.hset(KEYS.usage(yesterday), accounting.SPENT, 9_000_000)
    assert reports.spent_today(svc, now) == 4_500_000
    assert reports.spent_today(svc, now, {yesterday: {accounting.SPENT: 9_000_000}}) == 4_500_000  # today not in hand
    assert reports.spent_today(svc, now, {today: {accounting.SPENT: 2_000_000}}) == 2_000_000  # no second read
    assert reports.spent_today(svc, now + 86400) == 0


def test_the_overview_reads_counters_and_indexes(svc, sim):
    finish_job(svc, sim, submit_job(svc, "seen in the overview", model="flux-2-max"))
    submit_job(svc, "[pending] still at BFL")
    now = time.time()
    seen = reports.overview(svc, now, hours=3, days=2)
    assert [h["hour"] for h in seen["hours"]] == reports.hours_before(now, 3)
    assert seen["hours"][-1] == {"hour": accounting.utc_hour(now), "submitted": 2, "stored": 1, "failed": 0,
                                 "moderated": 0, "expired": 0, "canceled": 0, "aborted": 0}
    assert seen["latency_p50"] is not None and seen["latency_p50"] <= seen["latency_p95"]
    assert {(r["model"], r["jobs"], r["credits"]) for r in seen["days"]} == {("flux-2-max", 1, 7.0), ("flux-2-pro", 1, 3.0)}
    assert (seen["spent_today"], seen["reserved"], seen["daily_limit"]) == (10.0, 0.0, None)
    assert "balance" not in seen  # each account's own, from GET /v1/accounts' figures
    default = next(p for p in seen["pools"] if p["pool"] == "default")
    assert (default["in_flight"], default["queued"], default["limit"]) == (1, 0, svc.config.bfl_max_active)
