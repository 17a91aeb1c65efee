"""Accounting (``fluxhook.credits.accounting``): what a job's transitions count, per day, hour, model and app key,
the counters riding on transitions in real Redis, and retention leaving them alone. The totals after a run
through the Procfile's processes: tests/e2e/api/test_usage.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import pytest

from credit_helpers import finish_job, submit_job
from fluxhook.bfl.reports import Cost
from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.credits import accounting, reports
from fluxhook.lifecycle.retention import purge_expired
from fluxhook.services import build_services
from fluxhook.store.effects import AccountJobEnded, CountHourly, CountMetrics, CountUsage
from helpers import commands_during

DB = 11
TODAY = date(2026, 11, 21)


# --- the date range ------------------------------------------------------------------------------

def _at(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


def test_a_submission_counts_the_job_its_credits_and_the_spend_on_its_day():
    fields, effects = accounting.on_submitted("flux-2-pro", Cost(3.0, 0.0, 1.0), 1_000_000, _at("2026-11-21", 23))
    assert fields == {"usage_day": "2026-11-21", "counted_credits": 3_000_000, "counted_spend": 3_000_000,
                      "cost_credits": 3.0, "cost_input_mp": 0.0, "cost_output_mp": 1.0}
    assert effects[0] == CountUsage("2026-11-21", (("flux-2-pro:jobs", 1), ("flux-2-pro:credits", 3_000_000),
                                                   ("spent", 3_000_000), ("spent#default", 3_000_000)))
    assert effects[1] == CountHourly("2026-11-21T23", (("submitted", 1),))


def test_a_price_bfl_did_not_state_is_spent_at_its_reservation():
    fields, effects = accounting.on_submitted("flux-2-pro", None, 2_500_000, _at("2026-11-21"))
    assert fields == {"usage_day": "2026-11-21", "counted_credits": 0, "counted_spend": 2_500_000}
    assert effects[0].increments == (("flux-2-pro:jobs", 1), ("flux-2-pro:credits", 0), ("spent", 2_500_000),
                                    ("spent#default", 2_500_000))


def test_an_end_counts_on_the_day_of_submission_and_in_the_hour_it_happens():
    job = Job(id="job_x", status=st.READY, model="flux-2-pro", usage_day="2026-11-21", cost_credits=3.0,
              counted_credits=3_000_000, counted_spend=3_000_000)
    stored = accounting.on_end(job, st.STORED, _at("2026-11-22", 0), latency=0.7)
    assert stored == [CountHourly("2026-11-22T00", (("stored", 1), ("latency:1", 1), ("latency_ms", 700))),
                      CountUsage("2026-11-21", (("flux-2-pro:stored", 1),))]
    assert accounting.on_end(job, st.MODERATED, _at("2026-11-21"))[1].increments == (("flux-2-pro:failed", 1),)
    # Canceled after BFL took it: paid, no result, counted as such rather than as a failure.
    assert accounting.on_end(job, st.CANCELED, _at("2026-11-21"))[1].increments == (("flux-2-pro:canceled", 1),)
    assert accounting.on_end(job, st.EXPIRED, _at("2026-11-21"))[0].increments == (("expired", 1),)


def test_a_price_in_the_result_replaces_the_submissions_by_its_difference():
    job = Job(id="job_x", status=st.READY, model="flux-2-pro", usage_day="2026-11-21", cost_credits=0.85,
              counted_credits=420_000, counted_spend=420_000)
    effects = accounting.on_end(job, st.STORED, _at("2026-11-21"))
    assert _day(effects) == CountUsage("2026-11-21", (("flux-2-pro:stored", 1), ("flux-2-pro:credits", 430_000),
                                                      ("spent", 430_000)))
    assert CountMetrics((("fluxhook_credits_spent\x1faccount=\x1fkey=\x1fmodel=flux-2-pro", 0.43),)) in effects
    unknown_before = Job(id="job_y", status=st.READY, model="m", usage_day="2026-11-21", cost_credits=2.0,
                         counted_credits=0, counted_spend=1_000_000)
    assert _day(accounting.on_end(unknown_before, st.FAILED, _at("2026-11-21"))).increments == (
        ("m:failed", 1), ("m:credits", 2_000_000), ("spent", 1_000_000))


def test_an_end_of_a_job_an_account_ran_marks_the_account_for_its_balance():
    ran = Job(id="job_x", status=st.READY, model="flux-2-pro", usage_day="2026-11-21", counted_credits=3_000_000,
              counted_spend=3_000_000, account="eu")
    assert accounting.on_end(ran, st.STORED, _at("2026-11-22"))[-1] == AccountJobEnded("eu", _at("2026-11-22"))
    # Never sent (no usage_day), or a tracked task another app paid for: no account's balance moved with it.
    for other in (Job(id="job_q", status=st.QUEUED, model="flux-2-pro", account="eu"),
                  Job(id="job_t", status=st.SUBMITTED, bfl_id="abc", account="eu")):
        assert not [e for e in accounting.on_end(other, st.FAILED, _at("2026-11-22")) if isinstance(e, AccountJobEnded)]


def _day(effects) -> CountUsage:
    return next(effect for effect in effects if isinstance(effect, CountUsage))


def test_a_tracked_job_counts_only_in_the_hourly_outcomes():
    tracked = Job(id="job_t", status=st.SUBMITTED, bfl_id="abc")
    assert accounting.on_end(tracked, st.STORED, _at("2026-11-21")) == [CountHourly("2026-11-21T12", (("stored", 1),))]


def test_a_key_jobs_counts_count_again_under_its_key():
    fields, effects = accounting.on_submitted("flux-dev", Cost(2.0, 0.0, 1.0), 0, _at("2026-11-21"), key_id="key_a",
                                         key_name="shop")
    assert _day(effects).increments == (
        ("flux-dev:jobs", 1), ("flux-dev:credits", 2_000_000), ("spent", 2_000_000),
        ("flux-dev@key_a:jobs", 1), ("flux-dev@key_a:credits", 2_000_000), ("spent@key_a", 2_000_000),
        ("spent#default", 2_000_000))
    assert CountMetrics((("fluxhook_credits_spent\x1faccount=default\x1fkey=shop\x1fmodel=flux-dev", 2.0),)) in effects
    job = Job(id="job_k", status=st.READY, model="flux-dev", key_id="key_a", **fields)
    assert _day(accounting.on_end(job, st.STORED, _at("2026-11-21"))).increments == (
        ("flux-dev:stored", 1), ("flux-dev@key_a:stored", 1))


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def test_counters_ride_on_the_move_to_stored(svc, sim):
    first_hour = accounting.utc_hour(time.time())
    job = submit_job(svc, "counted", width=2048, height=1024)
    assert (job.cost(), job.usage_day) == ({"credits": 4.5, "input_mp": 0.0, "output_mp": 2.0}, accounting.utc_day(time.time()))
    connection = svc.redis
    commands = commands_during(connection, DB, lambda: finish_job(svc, sim, job))
    stored = [c for c in commands if c["client_type"] == "lua" and c["command"].startswith("HINCRBY fh:usage:")]
    # The day's count of stored jobs came from inside the transition's script, not a command of its own.
    assert [c["command"] for c in stored] == [f"HINCRBY fh:usage:{job.usage_day} flux-2-pro:stored 1"]
    assert not [c for c in commands if c["client_type"] != "lua" and "fh:usage:" in c["command"]
                and not c["command"].startswith("EVALSHA")]
    # And the mark that the account's balance is to be read again, one command of the same script.
    marks = [c for c in commands if svc.store.keys.balance_ended in c["command"]
             and not c["command"].startswith("EVALSHA")]
    assert [(c["client_type"], c["command"].rsplit(" ", 1)[0]) for c in marks] == [
        ("lua", f"HSET {svc.store.keys.balance_ended} default")]
    day = svc.store.usage.days([job.usage_day])[job.usage_day]
    assert day == {"flux-2-pro:jobs": 1, "flux-2-pro:credits": 4_500_000, "spent": 4_500_000, "flux-2-pro:stored": 1,
                   "spent#default": 4_500_000}
    assert 0 < svc.redis.ttl(svc.store.keys.usage(job.usage_day)) <= 400 * 86400
    # Counted in the hour of each step: a run across an hour's end counts in both.
    hours = svc.store.usage.hours(list(dict.fromkeys([first_hour, accounting.utc_hour(time.time())]))).values()
    total = {name: sum(hour.get(name, 0) for hour in hours) for name in ("submitted", "stored")}
    assert total == {"submitted": 1, "stored": 1}
    assert sum(v for hour in hours for k, v in hour.items() if k.startswith("latency:")) == 1


def test_concurrent_submissions_over_several_connections_add_up(svc, sim):
    other = build_services(svc.config)  # another process's connections to the same Redis
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: submit_job((svc, other)[n % 2], f"many {n}", model="flux-usage-many"), range(16)))
    today = accounting.utc_day(time.time())
    assert reports.rows(svc.store.usage.days([today])) == [
        {"date": today, "model": "flux-usage-many", "jobs": 16, "stored": 0, "failed": 0, "canceled": 0, "credits": 16.0}]


def test_retention_leaves_the_counters_alone(svc, sim):
    jobs = [finish_job(svc, sim, submit_job(svc, f"kept {n}", model="flux-usage-kept")) for n in range(3)]
    assert [job.status for job in jobs] == [st.STORED] * 3
    before = reports.usage_report(svc, None, None, time.time())
    assert purge_expired(svc, time.time() + 31 * 86400) == 3
    assert all(svc.jobs.get(job.id) is None for job in jobs)
    assert reports.usage_report(svc, None, None, time.time()) == before
    assert before["days"][0]["stored"] == 3 and before["total_credits"] == 3.0


# --- GET /v1/usage through the Procfile's processes -----------------------------------------------------
