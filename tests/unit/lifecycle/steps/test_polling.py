"""One poll of BFL for a job's task (fluxhook/lifecycle/steps/polling.py), in-process on a real Redis with a spy host playing
BFL: counted on the job, its answer on the job's timeline and in the poll metrics; "Task not found" believed only
past the callback grace; the task's own polling URL used only when its host is allowed; an answer that cannot be read
taken as BFL failing for now. What a check makes of the report: test_checking.py."""

from __future__ import annotations

import json
import time

import pytest

from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core.errors import BFLUnavailable
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.polling import poll_job
from helpers import tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after
GRACE = 2  # the suite's CALLBACK_GRACE_SECONDS
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services, spy):
    return make_services(DB, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _answer(spy, path: str, body: dict, status: int = 200) -> None:
    spy.route(path, status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _polls(svc, job_id: str) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "at"} for e in timeline.recent(svc.store.timeline, job_id)
            if e["kind"] == "poll"]


def _counted(svc, **labels) -> float:
    (field, _), = metrics.counted("fluxhook_polls", **labels).increments
    return float(svc.store.metrics_fields().get(field.encode(), 0))


def test_a_poll_is_counted_on_the_job_and_its_answer_kept_on_its_timeline(svc, spy):
    job = tracked_job(svc, "task-ready")
    _answer(spy, "/v1/get_result?id=task-ready", {"id": "task-ready", "status": "Ready", "result": {"sample": SAMPLE}})

    report = poll_job(svc, job)

    assert (report.bfl_id, report.status, report.sample_url) == ("task-ready", st.BFL_READY, SAMPLE)
    assert spy.hits == ["/v1/get_result?id=task-ready"]
    assert svc.jobs.get(job.id).polls == 1
    assert _polls(svc, job.id) == [{"kind": "poll", "answer": "Ready"}]
    assert _counted(svc, outcome="ready", account="default") == 1


def test_task_not_found_reads_as_pending_within_the_callback_grace_and_is_believed_after_it(svc, spy):
    fresh = tracked_job(svc, "task-fresh")
    old = tracked_job(svc, "task-old", submitted_at=time.time() - GRACE - 5)
    for task in ("task-fresh", "task-old"):
        _answer(spy, f"/v1/get_result?id={task}", {"detail": "Task not found"}, status=404)

    assert poll_job(svc, fresh).status == st.BFL_PENDING  # BFL may not know a task for a moment
    assert poll_job(svc, old).status == st.BFL_TASK_NOT_FOUND

    assert _polls(svc, fresh.id) == [{"kind": "poll", "answer": "Task not found"}]


def test_a_task_is_polled_at_its_own_polling_url_only_when_its_host_is_allowed(svc, spy, unlisted_spy):
    regional = tracked_job(svc, "task-regional")
    svc.jobs.update(regional.id, polling_url=spy.url + "/regional/get_result?id=task-regional")
    elsewhere = tracked_job(svc, "task-elsewhere")
    svc.jobs.update(elsewhere.id, polling_url=unlisted_spy.url + "/get_result?id=task-elsewhere")
    _answer(spy, "/regional/get_result?id=task-regional", {"id": "task-regional", "status": "Pending"})
    _answer(spy, "/v1/get_result?id=task-elsewhere", {"id": "task-elsewhere", "status": "Pending"})

    assert poll_job(svc, svc.jobs.get(regional.id)).status == st.BFL_PENDING
    assert poll_job(svc, svc.jobs.get(elsewhere.id)).status == st.BFL_PENDING

    # The API key never goes to a host off the allowlist: BFL's own base URL answers for every task.
    assert spy.hits == ["/regional/get_result?id=task-regional", "/v1/get_result?id=task-elsewhere"]
    assert unlisted_spy.hits == []


def test_an_answer_that_cannot_be_read_is_bfl_failing_for_now_and_is_recorded_as_such(svc, spy):
    job = tracked_job(svc, "task-garbled")
    _answer(spy, "/v1/get_result?id=task-garbled", {"id": "task-garbled", "status": 42})

    with pytest.raises(BFLUnavailable, match="could not be read"):
        poll_job(svc, job)

    assert svc.jobs.get(job.id).polls == 1 and svc.jobs.get(job.id).status == st.SUBMITTED
    assert _polls(svc, job.id) == [{"kind": "poll", "error": "bfl_unavailable"}]
    assert _counted(svc, outcome="bfl_unavailable", account="default") == 1


def test_polls_that_bring_no_news_are_counted_but_kept_off_the_timeline(svc, spy):
    # A watched video is polled every 1.5 s for minutes: its timeline keeps the first poll and each new word.
    job = tracked_job(svc, "task-long")
    for word in ("Pending", "Pending", "Reasoning", "Reasoning", "Generating", "Generating"):
        _answer(spy, "/v1/get_result?id=task-long", {"id": "task-long", "status": word, "progress": 0.5})
        report = poll_job(svc, svc.jobs.get(job.id))
        svc.jobs.update(job.id, bfl_status=report.status)  # as applying the report records it
    assert svc.jobs.get(job.id).polls == 6
    assert [p["answer"] for p in _polls(svc, job.id)] == ["Pending", "Reasoning", "Generating"]
