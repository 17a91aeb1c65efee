"""A submission whose answer never came (fluxhook/lifecycle/steps/reconciling.py), in-process on a real Redis: the job
waits for BFL's callback, takes the task it names, and fails only past the task's deadline, never sent again. Over
HTTP with two simulated accounts: tests/e2e/accounts/test_routing_and_failover.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.lifecycle.steps import reconciling

DB = 6


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _holding(svc) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", input={"prompt": "x"}, pool="default",
              created_at=now, updated_at=now)
    svc.jobs.create(job)
    assert svc.slots.acquire(job)
    return job


def test_an_uncertain_job_keeps_its_slot_and_takes_the_task_bfls_callback_names(svc):
    job = _holding(svc)
    assert reconciling.await_task(svc, job, svc.config.accounts[0]) == st.QUEUED
    waiting = svc.jobs.get(job.id)
    assert waiting.uncertain_at is not None and svc.slots.holds(waiting)  # BFL may be running it: its slot counts
    assert svc.jobs.due_at(job.id) > time.time() + reconciling.UNCERTAIN_FOR - 5

    assert reconciling.adopt_task(svc, waiting, BFLReport(bfl_id="task-1", status=st.BFL_PENDING))
    taken = svc.jobs.get(job.id)
    assert (taken.status, taken.bfl_id, taken.account) == (st.SUBMITTED, "task-1", "default")
    # Only once, and only for a job that waits for its answer.
    assert not reconciling.adopt_task(svc, taken, BFLReport(bfl_id="task-2", status=st.BFL_PENDING))
    plain = _holding(svc)
    assert not reconciling.adopt_task(svc, plain, BFLReport(bfl_id="task-3", status=st.BFL_PENDING))


def test_without_a_callback_by_the_deadline_it_fails_and_is_never_sent_again(svc):
    job = _holding(svc)
    reconciling.await_task(svc, job, svc.config.accounts[0])
    waiting = svc.jobs.get(job.id)
    assert reconciling.check_uncertain(svc, waiting, time.time()) == CheckOutcome.RESCHEDULED
    assert svc.jobs.get(job.id).status == st.QUEUED
    late = waiting.uncertain_at + reconciling.UNCERTAIN_FOR + 1
    assert reconciling.check_uncertain(svc, waiting, late) == CheckOutcome.TIMEOUT
    failed = svc.jobs.get(job.id)
    assert failed.status == st.FAILED and "not sent again" in failed.error["message"]
    assert not svc.slots.holds(failed)
