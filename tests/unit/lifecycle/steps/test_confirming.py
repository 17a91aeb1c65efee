"""Confirming a failure reported by callback (fluxhook/lifecycle/steps/confirming.py), in-process on a real Redis with a
spy host playing BFL: the report puts the job's check in the check line at once (no RQ task), claimed as the sweep
claims, so a check lost with its process is due again; the job ends only when BFL's own answer to that poll agrees; a
task BFL says still runs goes on, and the next failure report puts its check in line again; a Ready the poll finds is
learned by polling; a job gone or ended is not polled; another key's job keeps its turn in the line."""

from __future__ import annotations

import json
import time

import pytest

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.core.outcomes import CheckOutcome, ReportOutcome
from fluxhook.lifecycle.checking import check_job, take_checks
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps.applying import Origin, apply_report
from fluxhook.lifecycle.steps.confirming import check_now
from fluxhook.lifecycle.sweep import sweep
from helpers import tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services, spy):
    return make_services(DB, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _reported_failed(svc, bfl_id: str, key_id: str | None = None):
    """A running job (polled next in an hour) whose callback said it failed: its check is in line."""
    job = tracked_job(svc, bfl_id, due=time.time() + 3600)
    if key_id:
        svc.redis.hset(svc.store.keys.job(job.id), "key_id", key_id)
    failure = BFLReport(bfl_id=bfl_id, status=st.BFL_ERROR)
    assert apply_report(svc, job.id, failure, Origin("webhook", confirmed=False)) == ReportOutcome.CONFIRM_QUEUED
    return job


def _bfl_says(spy, bfl_id: str, body: dict) -> None:
    spy.route(f"/v1/get_result?id={bfl_id}", 200, json.dumps({"id": bfl_id, **body}).encode(),
              {"Content-Type": "application/json"})


def _run_checks(svc) -> dict[str, object]:
    """Take every check in line and run it, as the checkers do; each job's outcome."""
    return {check.job_id: check_job(svc, check.job_id, check.claim) for check in take_checks(svc, 100)}


def test_a_failure_report_puts_the_jobs_check_in_line_at_once_claimed_and_in_no_rq_queue(svc):
    before = time.time()
    job = _reported_failed(svc, "task-reported")
    again = apply_report(svc, job.id, BFLReport(bfl_id="task-reported", status=st.BFL_FAILED),
                         Origin("webhook", confirmed=False))

    claim = svc.store.checks.claim_of(job.id)
    assert again == ReportOutcome.CONFIRM_QUEUED and svc.store.checks.waiting() == 1  # in line once
    assert before + CLAIM_LEASE <= claim == svc.jobs.due_at(job.id) <= time.time() + CLAIM_LEASE
    assert svc.queue.get_jobs() == [] and svc.jobs.get(job.id).status == st.SUBMITTED


def test_a_failure_bfls_poll_agrees_with_ends_the_job(svc, spy):
    job = _reported_failed(svc, "task-failed")
    _bfl_says(spy, "task-failed", {"status": "Error", "details": {"message": "Internal error"}})

    assert _run_checks(svc) == {job.id: ReportOutcome.FINISHED}

    ended = svc.jobs.get(job.id)
    assert (ended.status, ended.error["code"], ended.polls) == (st.FAILED, "bfl_error", 1)
    assert "Internal error" in ended.error["message"]


def test_a_task_bfl_says_still_runs_goes_on_and_a_later_failure_report_is_checked_again(svc, spy):
    job = _reported_failed(svc, "task-forged")
    _bfl_says(spy, "task-forged", {"status": "Pending", "progress": 0.5})

    assert _run_checks(svc) == {job.id: ReportOutcome.PENDING}

    running = svc.jobs.get(job.id)
    assert (running.status, running.progress) == (st.SUBMITTED, 0.5)
    assert svc.store.checks.waiting() == 0 and svc.jobs.due_at(job.id) < time.time() + CLAIM_LEASE  # its next poll
    again = apply_report(svc, job.id, BFLReport(bfl_id="task-forged", status=st.BFL_FAILED),
                         Origin("webhook", confirmed=False))
    assert again == ReportOutcome.CONFIRM_QUEUED and svc.store.checks.waiting() == 1


def test_a_ready_the_confirming_poll_finds_is_learned_by_polling(svc, spy):
    job = _reported_failed(svc, "task-ready-after-all")
    _bfl_says(spy, "task-ready-after-all", {"status": "Ready", "result": {"sample": SAMPLE}})

    assert _run_checks(svc) == {job.id: ReportOutcome.DOWNLOAD_QUEUED}

    ready = svc.jobs.get(job.id)
    assert (ready.status, ready.source, ready.result_url, ready.ready_proven) == (st.READY, "poll", SAMPLE, True)


def test_a_job_gone_or_ended_meanwhile_is_not_polled(svc, spy):
    ended = _reported_failed(svc, "task-ended")
    svc.jobs.transition(ended.id, st.MODERATED, error={"code": "moderated", "message": "x"})
    gone = _reported_failed(svc, "task-gone")
    assert remove_job(svc, gone.id)

    assert set(_run_checks(svc).values()) == {CheckOutcome.SKIPPED}

    assert spy.hits == [] and svc.jobs.get(ended.id).status == st.MODERATED
    assert not check_now(svc, ended.id) and not check_now(svc, gone.id)


def test_a_check_lost_with_its_process_is_due_again_when_its_claim_lapses(svc, spy):
    job = _reported_failed(svc, "task-lost")
    take_checks(svc, 100)  # taken by a process that died before it ran it
    _bfl_says(spy, "task-lost", {"status": "Error"})

    claim = svc.jobs.due_at(job.id)
    assert sweep(svc, now=claim - 1).due == 0  # held until its claim lapses
    assert sweep(svc, now=claim + 1).due == 1

    assert _run_checks(svc) == {job.id: ReportOutcome.FINISHED}


def test_another_keys_reported_job_keeps_its_turn_beside_a_keys_many(svc, spy):
    many = [_reported_failed(svc, f"task-a-{n}", key_id="key_a") for n in range(20)]
    theirs = _reported_failed(svc, "task-b", key_id="key_b")

    first = [check.job_id for check in take_checks(svc, 2)]

    assert theirs.id in first and first[0] in {theirs.id, many[0].id}
