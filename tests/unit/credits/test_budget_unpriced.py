"""A model BFL has not yet priced within its catalog entry goes alone under a limit (issue 45 point 4, docs/callbacks.md):
BFL states a price only in its answer, about a second after the send, so without this every send of that second
would pass its bound before the first answer showed the entry wrong. In-process on a real Redis, and the
simulator answering each submission after 0.3 s so that the sends overlap."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fluxhook import metrics
from fluxhook.bfl.reports import parse_cost
from fluxhook.core.errors import BudgetExceeded
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import creating
from fluxhook.lifecycle.creating import JobRequest
from fluxhook.lifecycle.steps.callers import ADMIN
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.prices import PriceCheck

DB = 9
LIMIT = 50
MODEL = "flux-2-klein-9b"  # the catalog bounds it at 2 credits a megapixel image
ONE_MP = {"prompt": "x", "width": 1024, "height": 1024}


@pytest.fixture()
def svc(make_services, sim):
    sim.settings(submit_delay=0.3)
    return make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="24")


def _spent(svc) -> float:
    return accounting.from_micro(svc.store.usage.counter(accounting.utc_day(time.time()), accounting.SPENT))


def test_a_models_first_request_goes_alone_and_the_rest_follow_bounded_once_bfl_priced_it_within(svc):
    entry = svc.config.catalog.get(MODEL)
    now = time.time()
    assert svc.store.prices.check(MODEL, repr(entry.price)) == PriceCheck.UNSEEN
    first = budget.reserve(svc, "job_a", MODEL, ONE_MP, now)
    assert first.admitted and first.amount == LIMIT * accounting.MICRO  # alone: all that is left
    assert budget.reserve(svc, "job_b", MODEL, ONE_MP, now).waits
    # BFL's answer settles it, within the entry: from then on each request holds its bound, side by side.
    svc.store.effects.apply([ReleaseBudget("job_a")])
    budget.check_price(svc, MODEL, ONE_MP, parse_cost({"cost": 1.0, "input_mp": 0, "output_mp": 1.05}))
    assert svc.store.prices.check(MODEL, repr(entry.price)) == PriceCheck.WITHIN
    bound = budget.most(svc, MODEL, ONE_MP)
    assert 0 < bound < LIMIT * accounting.MICRO
    assert [budget.reserve(svc, f"job_{n}", MODEL, ONE_MP, now).amount for n in "bcd"] == [bound] * 3


def test_a_price_far_above_the_catalogs_bound_from_the_start_ends_at_most_one_jobs_price_over(svc, sim):
    sim.settings(cost_fields={"cost": 100.0, "input_mp": 0, "output_mp": 1.05})  # 50 times the bound

    def send(n: int):
        # A request that comes once the first price is settled is refused at once (the day is spent): also right.
        try:
            return creating.create_job(svc, ADMIN, JobRequest(MODEL, dict(ONE_MP, prompt=f"[pending] at once {n}")),
                                       submit_here=True).job
        except BudgetExceeded:
            return None

    with ThreadPoolExecutor(40) as pool:
        jobs = list(pool.map(send, range(40)))

    assert _spent(svc) <= LIMIT + 100, [job and job.status for job in jobs]
    assert sim.stats()["submitted"] == 1
    counted = {s.value for f in metrics.recorded_families(svc.store) for s in f.samples
               if s.name == "fluxhook_price_over_catalog_total"}
    assert counted == {1.0}
