"""Polls that BFL answers with status words beyond the known ones (``fluxhook.lifecycle.checking``): Reasoning keeps
the job and its schedule, a job still generating after its hour times out, an unreadable answer is BFL failing for
now. A spy host stands in for BFL."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.errors import BFLUnavailable
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps import schedule
from helpers import tracked_job


@pytest.fixture()
def services(make_services, spy):
    """Services on database 6 whose polls go to the spy host."""
    return make_services(6, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def test_a_poll_answering_reasoning_keeps_the_job_and_its_schedule(services, spy):
    spy.route("/v1/get_result?id=thinking", body=b'{"id": "thinking", "status": "Reasoning", "progress": 0.05}')
    job = tracked_job(services, "thinking", submitted_at=time.time() - 60)

    outcome = checking.poll_submitted(services, job, time.time())

    assert outcome == "pending"
    seen = services.jobs.get(job.id)
    assert (seen.status, seen.bfl_status, seen.progress, seen.polls) == ("submitted", "Reasoning", 0.05, 1)
    assert services.jobs.due_at(job.id) > time.time()


def test_a_job_still_generating_after_its_hour_times_out(services, spy):
    spy.route("/v1/get_result?id=slow", body=b'{"id": "slow", "status": "Generating", "progress": 0.9}')
    job = tracked_job(services, "slow", submitted_at=time.time() - schedule.POLL_DEADLINE - 1)

    assert checking.poll_submitted(services, job, time.time()) == CheckOutcome.TIMEOUT

    seen = services.jobs.get(job.id)
    assert (seen.status, seen.error["code"]) == ("failed", "timeout")


def test_an_unreadable_poll_answer_is_bfl_failing_for_now(services, spy):
    spy.route("/v1/get_result?id=odd", body=b'{"id": "odd", "status": 12}')
    job = tracked_job(services, "odd", submitted_at=time.time() - 60)

    with pytest.raises(BFLUnavailable):
        checking.poll_submitted(services, job, time.time())

    seen = services.jobs.get(job.id)
    assert seen.status == "submitted" and services.jobs.due_at(job.id) > time.time()
