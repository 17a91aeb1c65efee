"""A BFL account's own daily limit (``BFL_<NAME>_DAILY_CREDIT_LIMIT``) is one more limit of the reservation (issue 45
point 4, docs/callbacks.md): reserved as a job is sent by that account, so however many are sent at once its spend ends at
most one job's price over. In-process on a real Redis and the simulator answering each submission after 0.3 s, so
that the sends overlap; the code that compared the day's spend before sending let every one of them through."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SIMULATOR_KEY
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import creating
from fluxhook.lifecycle.creating import JobRequest
from fluxhook.lifecycle.steps.callers import ADMIN

DB = 9
LIMIT = 10  # the account's own credits per day
ONE_MP = {"prompt": "x", "width": 1000, "height": 1000}  # the catalog bounds flux-2-pro at 3 credits for it


@pytest.fixture()
def svc(make_services, sim):
    sim.settings(submit_delay=0.3)
    return make_services(DB, BFL_ACCOUNTS="us", BFL_US_API_KEY=SIMULATOR_KEY, BFL_US_API_BASE=sim.url,
                         BFL_US_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="24")


def _spent(svc) -> float:
    day = accounting.utc_day(time.time())
    return accounting.from_micro(svc.store.usage.counter(day, accounting.account_spent_field("us")))


def test_many_jobs_sent_at_once_end_at_most_one_jobs_price_over_the_accounts_own_limit(svc, sim):
    def send(n: int):
        return creating.create_job(svc, ADMIN, JobRequest("flux-2-pro", dict(ONE_MP, prompt=f"at once {n}")),
                                   submit_here=True).job

    with ThreadPoolExecutor(16) as pool:
        jobs = list(pool.map(send, range(16)))
    dearest = accounting.from_micro(budget.most(svc, "flux-2-pro", ONE_MP))
    assert _spent(svc) <= LIMIT + dearest, [job.status for job in jobs]
    submitted = [job for job in jobs if job.status == "submitted"]
    assert 0 < len(submitted) < len(jobs) and sim.stats()["submitted"] == len(submitted)
    # The rest wait in line, holding nothing; the account rests once its day is spent.
    assert all(job.status == "queued" for job in jobs if job not in submitted)
    assert svc.store.usage.reserved(time.time()) == 0
