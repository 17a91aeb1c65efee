"""A failed job's error says BFL's words as a sentence, whether its failure came by callback or by poll, and the
dashboard's job page shows that same sentence: never the repr of the JSON BFL sent (fluxhook/bfl/reports.py)."""

from __future__ import annotations

import json
import time

import pytest

from fluxhook.bfl.reports import report_from_payload
from fluxhook.core import job as st
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps.applying import Origin, apply_report
from fluxhook.lifecycle.sweep import sweep
from helpers import tracked_job
from receiver.dashboard_view import detail

FAILURE = {"error": "Generation failed", "message": "Internal error"}
SENTENCE = "BFL reported that the generation failed: Internal error"


@pytest.fixture()
def svc(make_services, spy):
    return make_services(4, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _said(svc, job_id: str) -> dict:
    job = svc.jobs.get(job_id)
    assert job.status == st.FAILED
    shown = detail(svc.config, job, [])
    assert (shown["error_code"], shown["error_message"]) == (job.error["code"], job.error["message"])
    return job.error


def test_a_failure_found_by_a_poll_says_bfls_words(svc, spy):
    answer = {"id": "failed-task", "status": "Error", "result": None, "progress": None, "details": FAILURE}
    spy.route("/v1/get_result?id=failed-task", 200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
    job = tracked_job(svc, "failed-task", due=time.time() - 1)
    assert sweep(svc).due == 1
    [check] = svc.store.checks.take(1)
    assert checking.check_job(svc, job.id, check.claim) == ReportOutcome.FINISHED
    assert _said(svc, job.id) == {"code": "bfl_error", "message": SENTENCE}


def test_a_confirmed_failure_from_a_callback_says_the_same(svc):
    job = tracked_job(svc, "called-back")
    report = report_from_payload({"id": "called-back", "status": "Error", **FAILURE})
    assert apply_report(svc, job.id, report, Origin("callback", confirmed=True)) == ReportOutcome.FINISHED
    assert _said(svc, job.id) == {"code": "bfl_error", "message": SENTENCE}
