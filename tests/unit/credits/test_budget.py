"""The daily credit budget (``fluxhook.credits.budget``, ``BFL_DAILY_CREDIT_LIMIT``): its rules, the atomic reservation in
real Redis, and queued jobs that wait for the next day. The refusal over HTTP from two web processes at once:
tests/e2e/credits/test_budget.py."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from credit_helpers import priced_within_catalog, submit_job
from fluxhook import metrics
from fluxhook.bfl.reports import parse_cost
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.catalog import Catalog, Price
from fluxhook.core.config import Config
from fluxhook.core.errors import BudgetExceeded, ConfigError
from fluxhook.core.holds import RESERVATION_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import checking, submitting
from fluxhook.services import build_services
from fluxhook.store import usage as usage_store
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.keys import KEYS
from simulator import pricing

DB = 12
LIMIT = 12  # credits: four flux-2-pro tasks of one megapixel at 3 credits each
MICRO = accounting.MICRO


# --- the rules ----------------------------------------------------------------------------------------

def test_the_day_ends_at_midnight_utc_and_a_refused_job_sleeps_until_then_or_until_its_hour_is_up():
    late = datetime(2026, 11, 21, 23, 59, 30, tzinfo=timezone.utc).timestamp()
    assert budget.seconds_until_next_day(late) == 30
    assert budget.recheck_in(late, gives_up_at=late + 3600) == 30
    noon = late - 12 * 3600
    assert budget.recheck_in(noon, gives_up_at=noon + 1800) == 1800
    assert budget.recheck_in(noon, gives_up_at=noon - 5) == 1.0  # its hour is up: looked at (and failed) at once


def test_the_refusal_and_the_doctors_line_say_where_the_day_stands():
    late = datetime(2026, 11, 21, 21, 30, tzinfo=timezone.utc).timestamp()
    assert budget.refusal(12 * MICRO, 0, 12.0, late) == (
        "today's credits are spent: 12 of BFL_DAILY_CREDIT_LIMIT 12; new submissions are refused until 00:00 UTC "
        "(in 2 h 30 min)")
    assert "1.5 more reserved by submissions under way" in budget.refusal(10 * MICRO, 1_500_000, 11.5, late)
    assert budget.summary(6 * MICRO, 0, 12.0) == (False, "spent today 6 of BFL_DAILY_CREDIT_LIMIT 12 credits (50%)")
    assert budget.summary(12 * MICRO, 0, 12.0, refused=True)[0] is True
    assert budget.summary(2_500_000, 0, None) == (False, "spent today 2.5 credits; no BFL_DAILY_CREDIT_LIMIT")


@pytest.mark.parametrize("value", ["0", "-5", "twelve", "nan", "inf", "1e10", "12 credits"])
def test_a_limit_that_is_not_a_positive_number_is_a_configuration_error(value):
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "k" * 32, "API_TOKENS": "token-123456",
           "BFL_DAILY_CREDIT_LIMIT": value}
    with pytest.raises(ConfigError) as refused:
        Config.from_env(env)
    assert [p for p in refused.value.problems if "BFL_DAILY_CREDIT_LIMIT" in p] == [
        f"BFL_DAILY_CREDIT_LIMIT: must be a positive number of credits (at most 1e+09), got {value!r}"]
    assert Config.from_env({**env, "BFL_DAILY_CREDIT_LIMIT": "12.5"}).bfl_daily_credit_limit == 12.5


# --- the reservation, in Redis ------------------------------------------------------------------------

@pytest.fixture()
def svc(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT))
    priced_within_catalog(svc)
    return svc


@pytest.mark.parametrize("spent, reserved, limit, admitted", [
    (0, 0, 1, True), (8 * MICRO, 3 * MICRO, 12 * MICRO, True),
    (12 * MICRO, 0, 12 * MICRO, False), (9 * MICRO, 3 * MICRO, 12 * MICRO, False)])
def test_a_submission_goes_while_spend_and_reservations_stay_below_the_limit(svc, spent, reserved, limit, admitted):
    # The rule lives in store/lua/budget_reserve.lua only: pinned here through the store, in real Redis.
    now = time.time()
    day = accounting.utc_day(now)
    svc.redis.hset(KEYS.usage(day), accounting.SPENT, spent)
    if reserved:
        svc.redis.hset(KEYS.budget_held, "job_other", f"{int((now + 60) * 1000)} {reserved}")
    args = dict(limits=[svc.store.usage.account_limit(day, accounting.SPENT, limit)], bound=MICRO, now=now, lease=60)
    assert svc.store.usage.reserve("job_new", mode=usage_store.ReserveMode.DRY_RUN, **args)[:4] == (admitted, spent, reserved, 0)
    assert svc.store.usage.reserve("job_new", **args).admitted is admitted
    assert svc.redis.hexists(KEYS.budget_held, "job_new") is admitted


def test_a_look_again_reserves_nothing_and_leaves_a_send_under_way_its_reservation(svc):
    # A job waiting aside looks again (submission.wait_out_of_line) while a send of it may be under way: the look
    # neither reserves nor releases, so the send's reservation keeps counting against everyone else.
    now = time.time()
    day = accounting.utc_day(now)
    args = dict(limits=[svc.store.usage.account_limit(day, accounting.SPENT, 5 * MICRO)], now=now, lease=60)
    assert svc.store.usage.reserve("job_sending", bound=3 * MICRO, **args).admitted
    held = svc.redis.hget(KEYS.budget_held, "job_sending")

    assert svc.store.usage.reserve("job_sending", bound=3 * MICRO, mode=usage_store.ReserveMode.LOOK, **args).admitted
    assert svc.store.usage.reserve("job_aside", bound=MICRO, mode=usage_store.ReserveMode.LOOK, **args).admitted
    assert svc.redis.hgetall(KEYS.budget_held) == {b"job_sending": held}
    # What the send holds still counts: 3 of 5 credits held, so a 3-credit job waits to go alone.
    assert svc.store.usage.reserve("job_next", bound=3 * MICRO, mode=usage_store.ReserveMode.LOOK, **args).waits
    assert b"waits" in svc.redis.hget(KEYS.budget_held, "job_next")


PRO = "flux-2-pro"
ONE_MP = {"prompt": "x", "width": 1000, "height": 1000}  # one megapixel: the catalog bounds it at 3 credits




def test_concurrent_reservations_never_pass_the_last_credit(svc):
    other = build_services(svc.config)  # another process's connections
    ids = [new_job_id() for _ in range(60)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: budget.reserve((svc, other)[n % 2], ids[n], PRO, ONE_MP), range(60)))
    # Each holds its bound, 3 credits, until the 12 are held; the others are refused, none waits.
    assert sum(a.admitted for a in answers) == LIMIT // 3
    assert not any(a.waits for a in answers)
    assert svc.store.usage.reserved(time.time()) == LIMIT * MICRO


def test_a_model_the_catalog_cannot_bound_goes_alone_holding_all_that_is_left(svc):
    now = time.time()
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.SPENT, 2 * MICRO)
    video = "flux-3-video"  # BFL publishes no price for it
    alone = budget.reserve(svc, "job_a", video, ONE_MP, now)
    assert alone.admitted and alone.amount == (LIMIT - 2) * MICRO
    # While it is out, any other waits, whatever its model: what it costs is unknown, credits may remain.
    assert budget.reserve(svc, "job_b", video, ONE_MP, now).waits
    assert budget.reserve(svc, "job_c", PRO, ONE_MP, now).waits
    assert svc.store.usage.reserved(now) == (LIMIT - 2) * MICRO
    svc.store.effects.apply([ReleaseBudget("job_a")])
    assert budget.reserve(svc, "job_b", video, ONE_MP, now).amount == (LIMIT - 2) * MICRO


def test_a_bound_larger_than_what_is_left_goes_alone_or_waits(svc):
    now = time.time()
    large = {"prompt": "x", "width": 4096, "height": 4096}  # flux-2-max at its largest: bound 17 credits
    assert budget.reserve(svc, "job_a", PRO, ONE_MP, now).amount == 3 * MICRO
    assert budget.reserve(svc, "job_b", "flux-2-max", large, now).waits  # job_a's is live
    assert budget.admission(svc, "job_b", "flux-2-max", large, now) is None  # POST /v1/jobs creates it, sent later
    svc.store.effects.apply([ReleaseBudget("job_a")])
    assert budget.reserve(svc, "job_b", "flux-2-max", large, now).amount == LIMIT * MICRO
    assert svc.store.usage.reserved(now) == LIMIT * MICRO


def test_cheap_requests_first_do_not_lower_a_large_ones_bound(svc):
    # The bound comes from the catalog, never from earlier answers: cheap tasks priced first teach nothing.
    now = time.time()
    for _ in range(5):
        budget.check_price(svc, PRO, ONE_MP, parse_cost(pricing.price(PRO, ONE_MP)))
    large = {"prompt": "x", "width": 4096.0, "height": 4096.0}
    assert budget.reserve(svc, "job_a", PRO, large, now).amount == 8 * MICRO  # 3 + 3.19 x 1.5, rounded up
    assert budget.most(svc, PRO, large) >= round(pricing.price(PRO, large)["cost"] * MICRO)


def test_every_limit_of_the_list_must_admit_and_each_holds_its_reservation(svc):
    now = time.time()
    account = svc.store.usage.account_limit(accounting.utc_day(now), accounting.SPENT, 100 * MICRO)
    app = usage_store.Limit("fh:test:appspend", "spent", "fh:test:appheld", 5 * MICRO)
    first = svc.store.usage.reserve("job_a", [account, app], 4 * MICRO, now=now, lease=60)
    assert first.admitted and first.amount == 4 * MICRO
    second = svc.store.usage.reserve("job_b", [account, app], 4 * MICRO, now=now, lease=60)
    assert second.waits and second.limit_index == 1
    # Refused by the second limit, it holds nothing in the first either.
    assert svc.store.usage.reserved(now) == 4 * MICRO
    svc.redis.hset("fh:test:appspend", "spent", 5 * MICRO)
    assert not svc.store.usage.reserve("job_c", [account, app], MICRO, now=now, lease=60).admitted
    svc.redis.delete("fh:test:appspend", "fh:test:appheld")


def test_a_job_keeps_its_reservation_and_a_dead_ones_lapses(svc):
    now = time.time()
    first = budget.reserve(svc, "job_a", PRO, ONE_MP, now)
    assert first.admitted and first.amount == 3 * MICRO
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.SPENT, 9 * MICRO)
    assert not budget.reserve(svc, "job_b", PRO, ONE_MP, now).admitted
    assert budget.reserve(svc, "job_a", PRO, ONE_MP, now).admitted  # its own, taken when its request came in
    later = now + RESERVATION_LEASE + 1
    assert budget.reserve(svc, "job_b", PRO, ONE_MP, later).admitted  # job_a's lapsed: its process died
    svc.store.effects.apply([ReleaseBudget("job_b")])
    assert svc.store.usage.reserved(later) == 0


def test_a_job_holding_a_reservation_is_refused_once_the_day_is_spent_and_keeps_it(svc):
    now = time.time()
    assert budget.reserve(svc, "job_a", PRO, ONE_MP, now).admitted
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.SPENT, LIMIT * MICRO)
    again = budget.reserve(svc, "job_a", PRO, ONE_MP, now + 1)
    assert not again.admitted and again.spent == LIMIT * MICRO
    assert svc.store.usage.reserved(now + 1) == 3 * MICRO  # still its own, for when the day turns


def test_a_price_above_the_catalogs_bound_is_counted_and_its_model_then_goes_alone(svc, caplog):
    now = time.time()
    assert budget.most(svc, PRO, ONE_MP) == 3 * MICRO
    with caplog.at_level(logging.WARNING, logger="fluxhook.budget"):
        budget.check_price(svc, PRO, ONE_MP, parse_cost({"cost": 3.0, "input_mp": 0, "output_mp": 1}))  # within
        assert not caplog.records
        budget.check_price(svc, PRO, ONE_MP, parse_cost({"cost": 9.0, "input_mp": 0, "output_mp": 1}))
    [record] = caplog.records
    assert (record.charged, record.catalog_bound) == (9.0, 3.0)
    assert budget.most(svc, PRO, ONE_MP) is None  # no bound: it goes alone
    alone = budget.reserve(svc, "job_a", PRO, ONE_MP, now)
    assert alone.admitted and alone.amount == LIMIT * MICRO
    assert budget.reserve(svc, "job_b", "flux-2-klein-4b", ONE_MP, now).waits
    counted = {tuple(s.labels.items()): s.value for f in metrics.recorded_families(svc.store) for s in f.samples
               if s.name == "fluxhook_price_over_catalog_total"}
    assert counted == {(("model", PRO),): 1.0}
    # Corrected (another price for the entry), the model is bounded again once BFL prices it within the entry.
    corrected = build_services(replace(svc.config, catalog=Catalog({**svc.config.catalog.models, PRO: replace(
        svc.config.catalog.get(PRO), price=Price("megapixel", first=9.0, each=4.5))})))
    assert budget.most(corrected, PRO, ONE_MP) is None
    budget.check_price(corrected, PRO, ONE_MP, parse_cost({"cost": 9.0, "input_mp": 0, "output_mp": 1}))
    assert budget.most(corrected, PRO, ONE_MP) == 9 * MICRO


def test_a_submission_spends_its_price_in_place_of_its_reservation(svc, sim):
    job = submit_job(svc, "priced")
    assert job.status == st.SUBMITTED and job.cost() == {"credits": 3.0, "input_mp": 0.0, "output_mp": 1.0}
    day = svc.store.usage.days([job.usage_day])[job.usage_day]
    assert day[accounting.SPENT] == 3 * MICRO and svc.store.usage.reserved(time.time()) == 0


def test_past_the_limit_nothing_is_created_or_sent(svc, sim):
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, LIMIT * MICRO)
    with pytest.raises(BudgetExceeded) as refused:
        submit_job(svc, "one too many")
    assert (refused.value.status, refused.value.code) == (402, "budget_exceeded")
    assert svc.jobs.list()[0] == [] and sim.stats()["submitted"] == 0


def test_an_app_key_refused_by_the_services_limit_is_told_nothing_of_the_services_figures(svc):
    from fluxhook.store.app_keys import AppKey
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, LIMIT * MICRO)
    key = AppKey(id="key_tenant", name="tenant", prefix="fhk_test", secret_sha256="")
    with pytest.raises(BudgetExceeded) as tenant:
        budget.admission(svc, "job_tenant", "flux-2-pro", {"prompt": "p"}, key=key)
    assert "until 00:00 UTC" in tenant.value.message and f"{LIMIT} of" not in tenant.value.message
    with pytest.raises(BudgetExceeded) as operator:
        budget.admission(svc, "job_admin", "flux-2-pro", {"prompt": "p"})
    assert f"{LIMIT} of BFL_DAILY_CREDIT_LIMIT {LIMIT}" in operator.value.message


def _queued(svc, created_at: float) -> Job:
    job = Job(id=new_job_id(created_at), status=st.QUEUED, model="flux-2-pro", input={"prompt": "waits"},
              pool=pool_for("flux-2-pro"), created_at=created_at, updated_at=created_at)
    svc.jobs.create(job)
    return job


def test_a_queued_job_refused_by_the_budget_waits_alone_and_is_tried_again(svc, sim, caplog):
    job = _queued(svc, time.time())
    assert svc.slots.acquire(job)
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, LIMIT * MICRO)
    before = time.time()
    assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert svc.jobs.get(job.id).status == st.QUEUED and sim.stats()["submitted"] == 0
    # Neither a pause nor a strike, and its slot is free: the pool's other jobs are not held back.
    assert not svc.redis.exists(KEYS.paused(job.pool), KEYS.strikes(job.pool))
    assert svc.redis.zcard(KEYS.slots(job.pool)) == 0 and svc.slots.waiting(job.pool) == 0
    assert svc.slots.acquire(_queued(svc, time.time()))
    due = svc.jobs.due_at(job.id)
    gives_up_at = job.created_at + 3600
    assert before + budget.recheck_in(before, gives_up_at) - 1 <= due <= time.time() + budget.recheck_in(before, gives_up_at)
    # Come due while the day is still spent, it stays out of line (in line, it would take turns from jobs
    # that can go, and give them back), and is tried again later.
    claim = due + 60
    assert job.id in svc.jobs.claim_due(due, 10, claim)
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.RESCHEDULED
    # Asleep again until the same end: the day's turn or its hour's, whichever comes first.
    assert svc.slots.waiting(job.pool) == 0 and svc.jobs.due_at(job.id) == pytest.approx(due, abs=1)
    # Once the budget would let it go (here: the spend is reset), the sweep's check puts it back in line,
    # for the next free slot, and says so as the end of a wait, not as a stalled submission.
    svc.redis.hdel(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT)
    due = svc.jobs.due_at(job.id)
    claim = due + 60
    assert job.id in svc.jobs.claim_due(due, 10, claim)
    assert not svc.slots.holds(job)
    with caplog.at_level(logging.INFO, logger="fluxhook.checking"):
        assert checking.check_job(svc, job.id, claim) == CheckOutcome.REQUEUED
    assert svc.slots.waiting(job.pool) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "fluxhook.checking"] == ["waiting job put back in line"]


def test_a_queued_job_holding_a_reservation_waits_once_the_day_is_spent(svc, sim):
    job = _queued(svc, time.time())
    assert budget.reserve(svc, job.id, PRO, job.input).admitted  # taken when its request came in
    assert svc.slots.acquire(job)
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, LIMIT * MICRO)
    assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert sim.stats()["submitted"] == 0 and svc.jobs.get(job.id).status == st.QUEUED
    assert svc.store.usage.reserved(time.time()) == 4 * MICRO  # 1024 x 1024, unsized: 3.075, rounded up


def test_a_queued_job_whose_input_waits_in_storage_is_checked_without_reading_it(svc, sim):
    # Its record keeps the request's size; no input is stored here at all, so a read would fail the job.
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=PRO, input=None, pool=pool_for(PRO), created_at=now,
              updated_at=now, input_size=budget.request_size(svc.config.catalog.get(PRO),
                                                                   {"width": 4096, "height": 4096}).encode())
    svc.jobs.create(job)
    assert svc.slots.acquire(job)  # a sender sends a job that holds a slot
    svc.redis.hset(KEYS.usage(accounting.utc_day(now)), accounting.SPENT, LIMIT * MICRO)
    assert submitting.submit_queued(svc, job.id) == st.QUEUED
    assert svc.jobs.get(job.id).status == st.QUEUED and sim.stats()["submitted"] == 0


def test_a_queued_job_refused_for_its_whole_hour_fails_with_timeout(svc, sim):
    job = _queued(svc, time.time() - 3601)
    assert svc.slots.acquire(job)
    svc.redis.hset(KEYS.usage(accounting.utc_day(time.time())), accounting.SPENT, LIMIT * MICRO)
    assert submitting.submit_queued(svc, job.id) == st.FAILED
    failed = svc.jobs.get(job.id)
    assert failed.error["code"] == "timeout" and "BFL_DAILY_CREDIT_LIMIT" in failed.error["message"]
    assert sim.stats()["submitted"] == 0


def test_a_queued_job_whose_submission_fails_gives_its_reservation_back(svc, sim):
    job = _queued(svc, time.time())
    assert svc.slots.acquire(job)
    assert budget.reserve(svc, job.id, PRO, job.input).admitted
    sim.settings(credits=0)
    assert submitting.submit_queued(svc, job.id) == st.FAILED
    assert svc.store.usage.reserved(time.time()) == 0
