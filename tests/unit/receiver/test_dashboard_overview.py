"""The overview's numbers: ``reports.overview`` over 24 hours or 30 days in real Redis, and how
``receiver.dashboard_overview`` turns them into figures and charts."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from credit_helpers import finish_job, submit_job
from fluxhook.core.batch import Batch
from fluxhook.core.pacing import Backlog
from fluxhook.credits import accounting, reports
from fluxhook.credits.figures import epoch
from fluxhook.store.effects import CountHourly
from fluxhook.store.pacing import Judged
from receiver import dashboard_overview as view

DB = 3


def _period(name: str, **counts) -> dict:
    return {"period": name, "submitted": 0, "stored": 0, "failed": 0, "moderated": 0, "expired": 0, "canceled": 0,
            "aborted": 0, "latency_p50": None, "latency_p95": None, **counts}


# --- reports.overview, by hour and by day ---------------------------------------------------------------

def test_hours_of_days_and_periods_by_hour_or_by_day():
    assert reports.hours_of_days(["2026-11-21"])[:2] == ["2026-11-21T00", "2026-11-21T01"]
    assert len(reports.hours_of_days(["2026-11-21", "2026-11-22"])) == 48
    by_hour = {"2026-11-21T10": {"submitted": 2, "stored": 1, "latency:1": 1},
               "2026-11-21T11": {"failed": 1, "latency:5": 1}, "2026-11-22T00": {"expired": 1}}
    names = [*reports.hours_of_days(["2026-11-21"]), "2026-11-22T00"]
    hourly = reports.periods(by_hour, names, by_day=False)
    assert len(hourly) == 25 and hourly[10] == _period("2026-11-21T10", submitted=2, stored=1, latency_p50=0.75,
                                                       latency_p95=0.975)
    daily = reports.periods(by_hour, names, by_day=True)
    assert [p["period"] for p in daily] == ["2026-11-21", "2026-11-22"]
    assert (daily[0]["stored"], daily[0]["failed"], daily[1]["expired"]) == (1, 1, 1)
    assert daily[0]["latency_p95"] > 2.5  # both hours' buckets taken together: one of the two took up to 5 s


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def test_30_days_day_by_day_from_the_hourly_counters(svc, sim):
    finish_job(svc, sim, submit_job(svc, "stored today"))
    now = time.time()
    long_ago = now - 20 * 86400
    svc.store.effects.apply([CountHourly(accounting.utc_hour(long_ago), (("submitted", 3), ("stored", 2), ("expired", 1)))])
    seen = reports.overview(svc, now, days=30, by_day=True)
    today = datetime.fromtimestamp(now, timezone.utc).date().isoformat()
    assert [p["period"] for p in seen["periods"]] == seen["day_names"] and len(seen["day_names"]) == 30
    assert seen["day_names"][-1] == today
    days = {p["period"]: p for p in seen["periods"]}
    assert (days[today]["submitted"], days[today]["stored"]) == (1, 1) and days[today]["latency_p50"] is not None
    assert {k: days[accounting.utc_day(long_ago)][k] for k in ("submitted", "stored", "expired")} == {
        "submitted": 3, "stored": 2, "expired": 1}
    assert seen["days"] == [{"date": today, "model": "flux-2-pro", "jobs": 1, "stored": 1, "failed": 0,
        "canceled": 0, "credits": 3.0}]
    hourly = reports.overview(svc, now, hours=24, days=2)
    assert [p["period"] for p in hourly["periods"]] == reports.hours_before(now, 24)
    assert hourly["periods"][-1]["stored"] == 1 and len(hourly["day_names"]) == 2


# --- what the page shows ----------------------------------------------------------------------------

def test_labels_under_the_columns_never_crowd():
    hours = [f"2026-11-22T{h:02d}" for h in range(24)]
    # Counted back from the last column, the current hour or today: it always has its label.
    assert [view.period_label(h, n, 24) for n, h in enumerate(hours)][-4:] == ["", "21:00", "", "23:00"]
    assert sum(bool(view.period_label(h, n, 24, 6)) for n, h in enumerate(hours)) == 6
    assert view.period_label("2026-12-04", 29, 30) == "12-04" and view.period_label("2026-12-03", 28, 30) == ""
    assert [view.minor_label(n, 24) for n in (23, 21, 19)] == [False, True, False]  # a narrow window: every other
    assert view.period_title("2026-11-22T23") == "2026-11-22 23:00–00:00 UTC"
    assert view.period_title("2026-11-22") == "2026-11-22 (UTC)"


def test_a_column_says_what_it_stands_for():
    assert view.outcome_words({"stored": 4, "failed": 1, "submitted": 5}) == "4 stored, 1 failed; 5 submitted"
    assert view.outcome_words({"submitted": 2}) == "none ended; 2 submitted"
    assert (view.seconds(None), view.seconds(0.25), view.seconds(4.2)) == ("—", "250 ms", "4.2 s")


def test_models_keep_their_colour_in_name_order():
    rows = [{"model": m} for m in ("flux-dev", "flux-2-pro", "flux-dev", *(f"m{n}" for n in range(6)))]
    series = view.credit_series(rows)
    assert [(s.key, s.css) for s in series[:3]] == [("flux-2-pro", "m0"), ("flux-dev", "m1"), ("m0", "m2")]
    assert series[6].css == "m0"  # more models than colours: they share


def test_pools_now_and_all_of_them_against_the_overall_limit():
    data = {"pools": [{"pool": "default", "in_flight": 3, "queued": 0, "limit": 24},
                      {"pool": "flux-kontext-max", "in_flight": 6, "queued": 4, "limit": 6}], "max_active": 24}
    shown = view.pools(data)
    assert [(p["name"], p["in_flight"], p["queued"], p["limit"]) for p in shown] == [
        ("default", 3, 0, 24), ("flux-kontext-max", 6, 4, 6), ("all models", 9, 4, 24)]
    assert 'class="fill full"' in shown[1]["gauge"] and 'class="fill room"' in shown[0]["gauge"]
    # "default" alone would not say which models count in it.
    assert [(p["label"], p["note"]) for p in shown] == [
        ("Other models", "every model without a limit of its own"),
        ("flux-kontext-max", "its own limit (BFL_MODEL_LIMITS)"), ("All models", "BFL_MAX_ACTIVE")]
    alone = view.pools({"pools": data["pools"][:1], "max_active": 24})
    assert [(p["label"], p["note"]) for p in alone] == [("All models", "BFL_MAX_ACTIVE")]  # one pool: no total row


def test_each_accounts_balance_reads_like_the_doctors_with_when_it_was_read():
    read = 1_795_000_000.0
    shown = view.balances([_account(balance=1e6, balance_at="2026-11-18T11:06:40Z"),
                           _account(name="us", balance=812.5, balance_at="2026-11-18T11:08:45Z"),
                           _account(name="spare")], read + 125)
    assert shown == [{"name": "eu", "credits": "1,000,000", "read": "read 2 min ago", "at": "2026-11-18 11:06:40"},
                     {"name": "us", "credits": "812.50", "read": "read just now", "at": "2026-11-18 11:08:45"},
                     {"name": "spare", "credits": None, "read": "", "at": ""}]


def test_the_page_from_the_counters():
    periods = [_period(f"2026-11-22T{h:02d}") for h in range(24)]
    periods[5] = _period("2026-11-22T05", submitted=9, stored=7, failed=2, latency_p50=0.7, latency_p95=0.9)
    periods[9] = _period("2026-11-22T09", submitted=4, stored=3, moderated=1, latency_p50=3.0, latency_p95=4.0)
    periods[11] = _period("2026-11-22T11", canceled=2, aborted=1)  # as their callers asked: not ended badly
    data = {"periods": periods, "latency_p50": 0.8, "latency_p95": 3.9, "day_names": ["2026-11-21", "2026-11-22"],
            "days": [{"date": "2026-11-22", "model": "flux-dev", "jobs": 13, "stored": 10, "failed": 3,
                "canceled": 0, "credits": 6.5}],
            "spent_today": 6.5, "reserved": 0.0, "daily_limit": 100.0, "pools": [], "max_active": 24,
            "keys": [{"key_id": "key_0123456789abcdef", "name": "shop", "credits": 4.5}]}
    page = view.overview_page(data, "24h", 1_795_000_060.0,
                              accounts=[_account(balance=812.5, balance_at="2026-11-18T11:06:40Z")])
    assert page["keys"] == data["keys"]
    assert page["totals"] == {"submitted": 13, "stored": 10, "failed": 2, "moderated": 1, "expired": 0, "canceled": 2,
                              "aborted": 1}
    assert (page["ended_badly"], page["empty"], page["credits"]) == (3, False, 6.5)
    assert (page["latency_p50"], page["latency_p95"]) == ("800 ms", "3.9 s")
    assert page["balances"] == [{"name": "eu", "credits": "812.50", "read": "read 1 min ago", "at": "2026-11-18 11:06:40"}]
    assert page["accounts"][0]["balance_read"] == "read 1 min ago"
    assert page["jobs_chart"].count('class="col"') == 24 and 'data-total="9"' in page["jobs_chart"]
    assert "Jobs per hour by outcome, the last 24 hours" in page["jobs_chart"]
    assert page["credits_chart"].count('class="col"') == 2 and 'data-series="flux-dev"' in page["credits_chart"]
    assert page["latency_chart"].count("<circle") == 4
    empty = view.overview_page({**data, "periods": [_period("2026-11-22")], "days": []}, "30d")
    assert empty["empty"] and empty["models"] == [] and "Jobs per day" in empty["jobs_chart"]


# --- the BFL accounts panel ------------------------------------------------------------------------------

def _account(**fields) -> dict:
    return {"name": "eu", "region": "eu", "host": "api.eu.example", "in_flight": {}, "canceled_running": 0, "queued": 0,
            "cooling": None, "balance": None, "balance_at": None, "spent_today": 0.0, **fields}


def test_the_accounts_panel_in_words():
    idle, busy, cooling, broke = view.accounts_panel([
        _account(),
        _account(name="us", region=None, in_flight={"flux-2-pro": 3, "flux-kontext-max": 1}, canceled_running=2,
                 queued=5, balance=1250.5, balance_at="2026-11-21T10:00:00Z", spent_today=1000.0),
        _account(name="c", cooling={"until": "2026-11-21T10:00:30Z", "reason": "unavailable"}),
        _account(name="d", cooling={"until": "2026-11-21T10:00:30Z", "reason": "insufficient_credits"}),
    ], epoch("2026-11-21T10:00:40Z"))

    assert (idle["state"], idle["balance"], idle["in_flight"], idle["models"], idle["cooling"]) == \
        ("takes tasks", "not read lately", 0, "", False)
    assert (busy["region"], busy["in_flight"], busy["models"], busy["queued"]) == ("—", 4, "flux-2-pro 3, flux-kontext-max 1", 5)
    assert (idle["canceled_running"], busy["canceled_running"]) == (0, 2)
    assert (busy["balance"], busy["balance_read"], busy["spent_today"]) == ("1,250.50", "read 40 s ago", "1,000")
    assert idle["balance_read"] == ""
    assert cooling["cooling"] and cooling["state"] == "cooling: BFL unavailable, until 2026-11-21 10:00:30 UTC"
    assert broke["state"] == "cooling: out of credits, next look at the balance 2026-11-21 10:00:30 UTC"


def test_storage_now_in_words_and_the_running_batches_sent_beside_ended():
    quiet = view.storage_panel(Judged("", Backlog(0)), "")
    assert quiet["state"] == "sends go" and quiet["seconds"] == "nothing waits to be stored"
    behind = view.storage_panel(Judged("all", Backlog(400, stored=60, span=60), until=1_800_000_100.0), "all")
    assert behind["held"] and behind["rate"] == "1.0 a second over the last minute"
    assert behind["seconds"].startswith("about ") and "waiting reason storage" in behind["state"]
    assert "until about" in behind["state"]
    cold = view.storage_panel(Judged("all", Backlog(40)), "all")
    assert cold["seconds"] == "storing them: not measured yet" and "until it stores again" in cold["state"]
    items = view.storage_panel(Judged("bulk", Backlog(350, stored=60, span=60)), "bulk")
    assert items["state"].startswith("batch items' sends wait") and items["state"].endswith("single jobs still go")

    running = Batch(id="bat_1", model="flux-2-pro", total=500, created_at=1.0, counts={"stored": 80, "queued": 300,
                                                                                       "submitted": 120}, sent=200)
    ended = Batch(id="bat_2", model="flux-2-pro", total=1, created_at=1.0, counts={"stored": 1}, ended_at=2.0)
    assert view.running_batches([running, ended]) == [
        {"id": "bat_1", "model": "flux-2-pro", "done": "200 sent · 80 of 500 ended"}]
