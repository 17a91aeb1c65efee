"""What a report from BFL does to a job (fluxhook/lifecycle/steps/applying.py), on a real Redis: a Ready moves the job to
ready and queues its download once, a running word records its progress, a failure ends the job only once a poll
confirmed it (else it queues that poll), and a report about another task, for a job not submitted yet or gone,
changes nothing. The same path for callbacks (test_receiving.py) and polls (test_confirming.py, test_checking.py)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle.steps.applying import HINT_GAP, POLLED, Origin, apply_report, from_callback, hint
from fluxhook.lifecycle.steps.enqueueing import DOWNLOAD_TASK, download_line, download_pending, queued_download
from fluxhook.store.keys import KEYS
from fluxhook.store.work_lines import DOWNLOAD_LONG
from helpers import commands_during, tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _ready(bfl_id: str, sample: str = SAMPLE, **more) -> BFLReport:
    return BFLReport(bfl_id=bfl_id, status=st.BFL_READY, sample_url=sample, **more)


def _download_waits(svc, job: Job) -> bool:
    return download_pending(svc, job)


def _downloads(svc, job: Job) -> int:
    """How many downloads wait: in the job's download line, or in RQ (taken at once: no line held work)."""
    in_rq = sum(task.func_name == DOWNLOAD_TASK for task in svc.queue.get_jobs())
    return svc.store.work.waiting(download_line(job.model)) + in_rq


def test_a_ready_report_moves_the_job_to_ready_and_queues_its_download_once(svc):
    job = tracked_job(svc, "task-ready")
    report = _ready("task-ready", seed=7, finished_at=time.time() - 3)

    assert apply_report(svc, job.id, report, from_callback()) == ReportOutcome.DOWNLOAD_QUEUED

    ready = svc.jobs.get(job.id)
    assert (ready.status, ready.source, ready.result_url, ready.seed) == (st.READY, "webhook", SAMPLE, 7)
    assert ready.finished_at == pytest.approx(report.finished_at) and ready.webhooks == 1
    assert _download_waits(svc, ready)
    # BFL's callback again: nothing more is queued, and it is a duplicate.
    assert apply_report(svc, job.id, report, Origin("webhook", confirmed=False)) == ReportOutcome.DUPLICATE
    assert _downloads(svc, job) == 1


def test_a_polled_ready_of_a_job_in_hand_reads_no_model_and_its_download_joins_that_model_s_line(svc):
    job = replace(tracked_job(svc, "task-video"), model="flux-3-video")  # the model as its poll read it
    svc.jobs.update(job.id, model="flux-3-video")

    commands = commands_during(svc.redis, DB, lambda: apply_report(svc, job.id, _ready("task-video"), POLLED, job=job))

    assert [c["command"] for c in commands if c["command"].startswith(f"HGET {KEYS.job(job.id)} ")] == []
    assert svc.jobs.get(job.id).status == st.READY
    assert svc.queue.fetch_job(queued_download(svc, job.id)).description == f"{DOWNLOAD_LONG} {job.id}"


def test_a_running_report_records_bfls_word_and_progress_and_the_job_runs_on(svc):
    job = tracked_job(svc, "task-running")

    outcome = apply_report(svc, job.id, BFLReport(bfl_id="task-running", status="Generating", progress=0.4), POLLED)

    assert outcome == ReportOutcome.PENDING
    running = svc.jobs.get(job.id)
    assert (running.status, running.bfl_status, running.progress) == (st.SUBMITTED, "Generating", 0.4)


def test_an_unconfirmed_failure_only_queues_one_poll_to_confirm_it(svc):
    job = tracked_job(svc, "task-said-failed")
    failure = BFLReport(bfl_id="task-said-failed", status=st.BFL_ERROR, message="forged?")

    assert apply_report(svc, job.id, failure, Origin("webhook", confirmed=False)) == ReportOutcome.CONFIRM_QUEUED
    assert apply_report(svc, job.id, failure, Origin("webhook", confirmed=False)) == ReportOutcome.CONFIRM_QUEUED

    assert svc.jobs.get(job.id).status == st.SUBMITTED
    assert svc.store.checks.waiting() == 1 and svc.queue.get_jobs() == []  # its check, in line once


@pytest.mark.parametrize(("word", "status", "code"), [
    (st.BFL_ERROR, st.FAILED, "bfl_error"),
    (st.BFL_CONTENT_MODERATED, st.MODERATED, "moderated"),
    (st.BFL_TASK_NOT_FOUND, st.FAILED, "task_not_found"),
])
def test_a_confirmed_failure_ends_the_job_with_its_code(svc, word, status, code):
    job = tracked_job(svc, f"task-{code}")

    outcome = apply_report(svc, job.id, BFLReport(bfl_id=job.bfl_id, status=word), POLLED)

    assert outcome == ReportOutcome.FINISHED
    ended = svc.jobs.get(job.id)
    assert (ended.status, ended.error["code"], ended.bfl_status) == (status, code, word)
    assert svc.jobs.due_at(job.id) is None  # never looked at again


def test_an_ended_job_is_changed_by_no_report(svc):
    job = tracked_job(svc, "task-ended")
    apply_report(svc, job.id, BFLReport(bfl_id="task-ended", status=st.BFL_FAILED), POLLED)
    before = svc.jobs.get(job.id)

    for report in (_ready("task-ended"), BFLReport(bfl_id="task-ended", status=st.BFL_PENDING)):
        assert apply_report(svc, job.id, report, Origin("webhook", confirmed=False)) == ReportOutcome.DUPLICATE

    assert svc.jobs.get(job.id) == before
    assert not _download_waits(svc, before)


def test_a_report_for_another_task_a_job_not_yet_submitted_or_one_gone_applies_to_nothing(svc):
    job = tracked_job(svc, "task-mine")
    now = time.time()
    unsent, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool="default",
                                    input={"prompt": "x"}, created_at=now, updated_at=now))

    assert apply_report(svc, job.id, _ready("task-other"), Origin("webhook", confirmed=False),
                        expect_task="task-other") == ReportOutcome.OTHER_TASK
    assert apply_report(svc, unsent.id, _ready("task-early"), Origin("webhook", confirmed=False),
                        expect_task="task-early") == ReportOutcome.NOT_SUBMITTED
    assert apply_report(svc, new_job_id(), _ready("task-gone"), Origin("webhook", confirmed=False)) \
        == ReportOutcome.GONE

    assert svc.jobs.get(job.id).status == st.SUBMITTED and svc.jobs.get(unsent.id).status == st.QUEUED
    assert _downloads(svc, job) == 0 and _downloads(svc, unsent) == 0


def test_a_proven_ready_outranks_the_unproven_one_the_job_acted_on(svc):
    job = tracked_job(svc, "task-twice")
    unproven = "https://delivery.fluxhook-test.invalid/unproven.png"
    assert apply_report(svc, job.id, _ready("task-twice", unproven), Origin("webhook", confirmed=False, proven=False)) \
        == ReportOutcome.DOWNLOAD_QUEUED
    assert svc.jobs.get(job.id).ready_proven is False

    # Its download is already queued: the proven URL is recorded for it to find, and nothing more is queued.
    assert apply_report(svc, job.id, _ready("task-twice"), POLLED) == ReportOutcome.DUPLICATE

    ready = svc.jobs.get(job.id)
    assert (ready.result_url, ready.ready_proven) == (SAMPLE, True)
    assert _downloads(svc, job) == 1


def test_a_flood_of_hints_asks_bfl_once_per_gap_and_loses_none(svc):
    """Anyone holding the account's static secret can send hints: a flood of them for one job costs BFL one poll
    per HINT_GAP, and a hint inside the gap brings the sweep's next look to the gap's end rather than being lost."""
    job = tracked_job(svc, "task-flooded", due=time.time() + 3600)
    started = time.time()

    outcomes = {hint(svc, svc.jobs.get(job.id), attempt="webhooks") for _ in range(50)}

    # One check in line, which asks BFL now; the hints within the gap leave it there.
    assert svc.store.checks.waiting() == 1 and svc.queue.get_jobs() == []
    assert outcomes == {ReportOutcome.CONFIRM_QUEUED}  # the same answer for each, within the gap or not
    assert svc.store.checks.claim_of(job.id) == svc.jobs.due_at(job.id)
    assert svc.jobs.get(job.id).webhooks == 50
    # Its check taken (run): a hint within the gap brings the sweep's next look to the gap's end.
    assert [check.job_id for check in svc.store.checks.take(5)] == [job.id]
    hint(svc, svc.jobs.get(job.id))
    assert started + HINT_GAP - 0.001 <= svc.jobs.due_at(job.id) <= time.time() + HINT_GAP + 0.001  # milliseconds
    svc.redis.delete(svc.store.keys.hint_gap(job.id))  # the gap ends
    hint(svc, svc.jobs.get(job.id))
    assert svc.store.checks.waiting() == 1 and svc.queue.get_jobs() == []
