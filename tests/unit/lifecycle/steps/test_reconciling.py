"""A submission whose answer never came (fluxhook/lifecycle/steps/reconciling.py), in-process on a real Redis: the job
is submitted without a task, its bound counted as spent, waits for BFL's callback, takes the task it names, and fails
only past the task's deadline, never sent again. Over HTTP: tests/e2e/api/test_uncertain_send.py (one account, sent
within the request) and tests/e2e/accounts/test_routing_and_failover.py (two accounts)."""

from __future__ import annotations

import time

import pytest

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import accounting, budget
from fluxhook.credits.reports import spent_today
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps import reconciling

DB = 6
BOUND = accounting.to_micro(4.5)


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _holding(svc, key_id: str | None = None) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", input={"prompt": "x"}, pool="default",
              created_at=now, updated_at=now, key_id=key_id)
    svc.jobs.create(job)
    assert svc.slots.acquire(job)
    return job


def test_an_uncertain_job_is_submitted_keeps_its_slot_and_takes_the_task_bfls_callback_names(svc):
    job = _holding(svc)
    assert reconciling.await_task(svc, job, svc.config.accounts[0], BOUND) == st.SUBMITTED
    waiting = svc.jobs.get(job.id)
    assert (waiting.status, waiting.bfl_id, waiting.input) == (st.SUBMITTED, None, None)
    assert reconciling.awaits_task(waiting) and svc.slots.holds(waiting)  # BFL may be running it: its slot counts
    assert svc.jobs.due_at(job.id) > time.time() + reconciling.UNCERTAIN_FOR - 5

    assert reconciling.adopt_task(svc, waiting, BFLReport(bfl_id="task-1", status=st.BFL_PENDING))
    taken = svc.jobs.get(job.id)
    assert (taken.status, taken.bfl_id, taken.account) == (st.SUBMITTED, "task-1", "default")
    assert not reconciling.awaits_task(taken) and svc.jobs.get_by_bfl_id("task-1").id == job.id
    assert svc.jobs.due_at(job.id) < time.time() + reconciling.UNCERTAIN_FOR - 5  # polled as any task now
    # Only once, and only for a job that waits for its answer.
    assert not reconciling.adopt_task(svc, taken, BFLReport(bfl_id="task-2", status=st.BFL_PENDING))
    plain = _holding(svc)
    assert not reconciling.adopt_task(svc, plain, BFLReport(bfl_id="task-3", status=st.BFL_PENDING))


def test_its_bound_counts_as_spent_for_its_key_alone_while_bfl_has_not_said(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT="100")
    job = _holding(svc, key_id="key_a")
    other = _holding(svc, key_id="key_b")
    reservation = budget.reserve(svc, job.id, "flux-2-pro", {"prompt": "x"})
    assert reservation.admitted and reservation.amount > 0 and svc.store.usage.reserved(time.time()) > 0
    reconciling.await_task(svc, job, svc.config.accounts[0], reservation.amount)
    now = time.time()
    assert spent_today(svc, now) == reservation.amount == spent_today(svc, now, key_id="key_a")
    assert spent_today(svc, now, key_id="key_b") == 0
    assert svc.store.usage.reserved(now) == 0  # spent in place of its reservation, never both
    assert svc.jobs.get(job.id).counted_spend == reservation.amount and svc.jobs.get(other.id).status == st.QUEUED


def test_without_a_callback_by_the_deadline_it_fails_and_is_never_sent_again(svc):
    job = _holding(svc)
    reconciling.await_task(svc, job, svc.config.accounts[0], BOUND)
    waiting = svc.jobs.get(job.id)
    assert reconciling.check_uncertain(svc, waiting, time.time()) == CheckOutcome.RESCHEDULED
    assert svc.jobs.get(job.id).status == st.SUBMITTED
    late = waiting.uncertain_at + reconciling.UNCERTAIN_FOR + 1
    assert reconciling.check_uncertain(svc, waiting, late) == CheckOutcome.TIMEOUT
    failed = svc.jobs.get(job.id)
    assert failed.status == st.FAILED and "not sent again" in failed.error["message"]
    assert not svc.slots.holds(failed)
    assert spent_today(svc, time.time()) == BOUND  # BFL may have charged for it: the bound stays spent


def test_the_sweeps_check_of_a_job_without_its_task_polls_nothing(svc, sim):
    job = _holding(svc)
    reconciling.await_task(svc, job, svc.config.accounts[0], BOUND)
    polls = sim.stats()["polls_total"]
    claim = time.time()
    svc.jobs.update(job.id, due=claim)
    assert svc.jobs.claim_due(claim + 1, 10, claim) == [job.id]
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.RESCHEDULED
    assert sim.stats()["polls_total"] == polls and svc.jobs.get(job.id).status == st.SUBMITTED
