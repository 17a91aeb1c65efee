"""No tenant holds the budget hostage (issue 45 point 1, docs/callbacks.md): a reservation is held only by a job being sent.
Jobs that wait for a slot, their key's ``max_active`` or BFL's room reserve nothing, so another tenant's job is
admitted at once. In-process on a real Redis and the simulator; each test failed on the code that reserved at
admission (a key's nine queued flux-2-max jobs held 826 credits for an hour)."""

from __future__ import annotations

import time

import pytest

from credit_helpers import priced_within_catalog
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import creating, key_admin
from fluxhook.lifecycle.creating import JobRequest
from fluxhook.lifecycle.steps.callers import ADMIN, Caller

DB = 9
LIMIT = 300  # credits
MICRO = accounting.MICRO
# flux-2-max with eight input images at 2048²: the catalog bounds it near 92 credits.
DEAR = {"prompt": "hostage", "width": 2048, "height": 2048,
        **{f"input_image{'' if n == 1 else f'_{n}'}": f"https://example.com/{n}.png" for n in range(1, 9)}}


@pytest.fixture()
def svc(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="4")
    priced_within_catalog(svc)
    return svc


def _key(svc, **limits) -> Caller:
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", **limits}, time.time())
    return Caller(key)


def test_a_keys_jobs_waiting_for_its_max_active_hold_nothing_against_another_tenant(svc):
    hoarder = _key(svc, max_active=1)
    jobs = [creating.create_job(svc, hoarder, JobRequest("flux-2-max", dict(DEAR)), submit_here=False).job
            for _ in range(9)]
    assert len({job.id for job in jobs}) == 9 and all(job.status == "queued" for job in jobs)
    assert budget.most(svc, "flux-2-max", DEAR) * 9 > LIMIT * MICRO  # what the old admission reserved
    assert svc.store.usage.reserved(time.time()) == 0
    # Another tenant's cheap job is admitted and reserves at once: nothing of the hoarder's is in its way.
    other = budget.reserve(svc, "job_other_tenant", "flux-2-pro", {"prompt": "p", "width": 1024, "height": 1024})
    assert other.admitted and not other.waits


def test_a_job_sent_in_the_request_settles_its_reservation_with_bfls_answer(svc, sim):
    job = creating.create_job(svc, ADMIN, JobRequest("flux-2-pro", {"prompt": "in hand"}), submit_here=True).job
    assert job.status == "submitted" and svc.store.usage.reserved(time.time()) == 0
    assert svc.store.usage.counter(accounting.utc_day(time.time()), accounting.SPENT) > 0


def test_a_job_bfl_turns_away_goes_back_in_line_holding_nothing(svc, sim):
    sim.settings(out_of_capacity=True)  # BFL answers 503: the pool pauses, the job waits in line
    job = creating.create_job(svc, ADMIN, JobRequest("flux-2-pro", {"prompt": "turned away"}), submit_here=True).job
    assert job.status == "queued" and sim.stats()["submitted"] == 0
    assert svc.store.usage.reserved(time.time()) == 0
