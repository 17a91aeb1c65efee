"""Confirming a failure reported by callback (fluxhook/lifecycle/confirming.py), in-process on a real Redis with a spy
host playing BFL: the job ends only when BFL's own answer to a poll agrees; a task BFL says still runs goes on, and
the next failure report may queue a confirmation again; a Ready the poll finds is learned by polling; a job gone or
ended is not polled. The report's effects themselves: test_applying.py."""

from __future__ import annotations

import json

import pytest

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import transitions as st
from fluxhook.core.outcomes import SKIPPED, ReportOutcome
from fluxhook.lifecycle.confirming import confirm_outcome
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps.applying import Origin, apply_report
from fluxhook.store.keys import KEYS
from helpers import tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services, spy):
    return make_services(DB, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _reported_failed(svc, bfl_id: str):
    """A running job whose callback said it failed: its confirmation is queued."""
    job = tracked_job(svc, bfl_id)
    failure = BFLReport(bfl_id=bfl_id, status=st.BFL_ERROR)
    assert apply_report(svc, job.id, failure, Origin("webhook", confirmed=False)) == ReportOutcome.CONFIRM_QUEUED
    return job


def _bfl_says(spy, bfl_id: str, body: dict) -> None:
    spy.route(f"/v1/get_result?id={bfl_id}", 200, json.dumps({"id": bfl_id, **body}).encode(),
              {"Content-Type": "application/json"})


def test_a_failure_bfls_poll_agrees_with_ends_the_job(svc, spy):
    job = _reported_failed(svc, "task-failed")
    _bfl_says(spy, "task-failed", {"status": "Error", "details": {"message": "Internal error"}})

    assert confirm_outcome(svc, job.id) == ReportOutcome.FINISHED

    ended = svc.jobs.get(job.id)
    assert (ended.status, ended.source, ended.error["code"], ended.polls) == (st.FAILED, "webhook", "bfl_error", 1)
    assert "Internal error" in ended.error["message"]


def test_a_task_bfl_says_still_runs_goes_on_and_a_later_failure_report_is_confirmed_again(svc, spy):
    job = _reported_failed(svc, "task-forged")
    _bfl_says(spy, "task-forged", {"status": "Pending", "progress": 0.5})

    assert confirm_outcome(svc, job.id) == ReportOutcome.PENDING

    running = svc.jobs.get(job.id)
    assert (running.status, running.progress) == (st.SUBMITTED, 0.5)
    assert svc.redis.get(KEYS.confirm_lock(job.id)) is None
    again = apply_report(svc, job.id, BFLReport(bfl_id="task-forged", status=st.BFL_FAILED),
                         Origin("webhook", confirmed=False))
    assert again == ReportOutcome.CONFIRM_QUEUED and len(svc.queue.get_jobs()) == 2


def test_a_ready_the_confirming_poll_finds_is_learned_by_polling(svc, spy):
    job = _reported_failed(svc, "task-ready-after-all")
    _bfl_says(spy, "task-ready-after-all", {"status": "Ready", "result": {"sample": SAMPLE}})

    assert confirm_outcome(svc, job.id) == ReportOutcome.DOWNLOAD_QUEUED

    ready = svc.jobs.get(job.id)
    assert (ready.status, ready.source, ready.result_url, ready.ready_proven) == (st.READY, "poll", SAMPLE, True)


def test_a_job_gone_or_ended_meanwhile_is_not_polled(svc, spy):
    ended = _reported_failed(svc, "task-ended")
    svc.jobs.transition(ended.id, st.MODERATED, error={"code": "moderated", "message": "x"})
    gone = _reported_failed(svc, "task-gone")
    assert remove_job(svc, gone.id)

    assert confirm_outcome(svc, ended.id) == SKIPPED
    assert confirm_outcome(svc, gone.id) == SKIPPED

    assert spy.hits == [] and svc.jobs.get(ended.id).status == st.MODERATED
