"""Receiving BFL's callbacks (fluxhook/lifecycle/receiving.py) in-process on a real Redis: on a job's own URL, a
proven report is applied and counted once, a forged URL, a wrong secret or another task's report is refused with its
reason, and one that overtakes the submission's answer is kept; on the static URL, the account's secret proves only a
task its app tracked. Over HTTP with the Procfile's processes: tests/e2e/callbacks/."""

from __future__ import annotations

import io
import json
import time

import pytest

from conftest import STATIC_SECRET, ready_payload
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.errors import CallbackRefused, Gone, NotReady
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.receiving import receive_job_callback, receive_static_callback
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps import applying, timeline
from fluxhook.lifecycle.steps.enqueueing import queued_download
from fluxhook.store.keys import KEYS
from fluxhook.store.work_lines import DOWNLOAD, DOWNLOAD_LONG
from helpers import commands_during, tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _submitted(svc, bfl_id: str | None = "task-own", model: str = "flux-2-pro") -> Job:
    """A job fluxhook sent to BFL as task ``bfl_id`` (None: its submission's answer is not recorded yet)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED if bfl_id else st.QUEUED, model=model,
                                 pool="default", bfl_id=bfl_id, created_at=now, updated_at=now, submitted_at=now))
    return job


def _on_own_url(svc, job_id: str, payload: dict, *, secret: str | None = "derived", token: str | None = None):
    """A callback on the job's own URL, proven with its secret the way BFL's SDK sends it."""
    keys = svc.config.secret_keys
    body = json.dumps(payload).encode()
    secret = signing.job_webhook_secret(keys, job_id) if secret == "derived" else secret
    headers = {"X-Webhook-Secret": secret} if secret else {}
    return receive_job_callback(svc, token or signing.webhook_token(keys, job_id), headers, io.BytesIO(body), len(body))


def _on_static_url(svc, payload: dict, secret: str = STATIC_SECRET):
    body = json.dumps(payload).encode()
    return receive_static_callback(svc, {"X-Webhook-Secret": secret}, io.BytesIO(body), len(body))


def _callbacks(svc, job_id: str) -> list[dict]:
    return [e for e in timeline.recent(svc.store.timeline, job_id) if e["kind"] == "callback"]


def test_a_proven_ready_callback_moves_its_job_to_ready_and_a_repeat_counts_as_a_duplicate(svc):
    job = _submitted(svc)

    receipt = _on_own_url(svc, job.id, ready_payload("task-own", SAMPLE))

    assert (receipt.status, receipt.counted_as, receipt.counted, receipt.job_id) == (200, "accepted", True, job.id)
    assert receipt.answer == {"ok": True, "job_id": job.id, "outcome": "download_queued"}
    ready = svc.jobs.get(job.id)
    assert (ready.status, ready.result_url, ready.source, ready.webhooks) == (st.READY, SAMPLE, "webhook", 1)
    assert _on_own_url(svc, job.id, ready_payload("task-own", SAMPLE)).counted_as == "duplicate"
    assert [e["outcome"] for e in _callbacks(svc, job.id)] == ["accepted", "duplicate"]


@pytest.mark.parametrize("model, line", [("flux-2-pro", DOWNLOAD), ("flux-3-video", DOWNLOAD_LONG)])
def test_a_ready_callback_on_a_url_naming_its_model_reads_nothing_first_and_its_download_joins_that_model_s_line(
        svc, model, line):
    named, unnamed = _submitted(svc, "task-named", model), _submitted(svc, "task-unnamed", model)
    keys = svc.config.secret_keys

    def callback(job, token):
        return lambda: _on_own_url(svc, job.id, ready_payload(job.bfl_id, SAMPLE), token=token)

    first = commands_during(svc.redis, DB, callback(named, signing.webhook_token(keys, named.id, model)))
    # A URL minted before the model was in it (a task sent by an older release) reads it.
    older = commands_during(svc.redis, DB, callback(unnamed, signing.webhook_token(keys, unnamed.id)))

    def model_reads(commands, job):
        return [c["command"] for c in commands if c["command"].startswith(f"HGET {KEYS.job(job.id)} ")]

    assert model_reads(first, named) == [] and model_reads(older, unnamed) == [f"HGET {KEYS.job(unnamed.id)} model"]
    for job in (named, unnamed):
        assert svc.jobs.get(job.id).status == st.READY
        assert svc.queue.fetch_job(queued_download(svc, job.id)).description == f"{line} {job.id}"


def test_a_url_fluxhook_did_not_issue_is_refused_before_its_body_is_read(svc):
    job = _submitted(svc)
    body = io.BytesIO(json.dumps(ready_payload("task-own", SAMPLE)).encode())

    with pytest.raises(CallbackRefused) as refused:
        receive_job_callback(svc, signing.webhook_token("another-services-secret-key", job.id), {}, body, None)

    assert (refused.value.reason, refused.value.status, refused.value.job_id) == ("bad_token", 401, None)
    assert body.tell() == 0
    assert svc.jobs.get(job.id).status == st.SUBMITTED


def test_a_wrong_secret_is_refused_on_the_jobs_timeline_and_once_the_job_is_gone_its_url_answers_gone(svc):
    job = _submitted(svc)

    with pytest.raises(CallbackRefused) as refused:
        _on_own_url(svc, job.id, ready_payload("task-own", SAMPLE), secret="not-its-secret")

    assert (refused.value.reason, refused.value.job_id) == ("bad_secret", job.id)
    assert svc.jobs.get(job.id).status == st.SUBMITTED
    assert [(e["outcome"], e["reason"]) for e in _callbacks(svc, job.id)] == [("refused", "bad_secret")]
    assert remove_job(svc, job.id)
    with pytest.raises(Gone):
        _on_own_url(svc, job.id, ready_payload("task-own", SAMPLE), secret="not-its-secret")


def test_a_report_of_another_task_than_its_urls_job_is_refused(svc):
    job = _submitted(svc)

    with pytest.raises(CallbackRefused) as refused:
        _on_own_url(svc, job.id, ready_payload("task-someone-elses", SAMPLE))

    assert (refused.value.reason, refused.value.status) == ("wrong_task", 401)
    assert svc.jobs.get(job.id).status == st.SUBMITTED and svc.jobs.get(job.id).result_url is None


def test_a_failure_callback_only_queues_a_poll_to_confirm_it(svc):
    job = _submitted(svc)

    receipt = _on_own_url(svc, job.id, {"id": "task-own", "status": "Error", "error": "Generation failed"})

    assert (receipt.status, receipt.answer["outcome"]) == (200, "confirm_queued")
    assert svc.jobs.get(job.id).status == st.SUBMITTED
    assert svc.store.checks.claim_of(job.id) is not None and svc.queue.get_jobs() == []  # its check, in line


def test_a_failure_callback_is_on_the_timeline_before_the_poll_it_queued_even_if_the_poll_answers_first(
        svc, monkeypatch):
    job = _submitted(svc)
    queued = applying.check_now

    def poll_answers_at_once(svc_, job_id):
        # The worker's poll, taken and answered between the queueing and the callback's note.
        done = queued(svc_, job_id)
        time.sleep(0.02)
        timeline.record(svc_, job_id, "poll", bfl_status="Error")
        return done

    monkeypatch.setattr(applying, "check_now", poll_answers_at_once)
    _on_own_url(svc, job.id, {"id": "task-own", "status": "Error", "error": "Generation failed"})

    story = sorted(timeline.recent(svc.store.timeline, job.id), key=lambda entry: entry["at"])
    assert [entry["kind"] for entry in story] == ["callback", "poll"], story


def test_a_proven_callback_that_overtakes_the_submissions_answer_is_kept_for_its_job_an_unproven_one_is_not(svc):
    job = _submitted(svc, bfl_id=None)
    payload = ready_payload("task-not-yet-recorded", SAMPLE)

    with pytest.raises(NotReady) as retry:
        _on_own_url(svc, job.id, payload, secret=None)  # nothing ties an unproven body to this job yet
    assert retry.value.status == 409 and svc.store.kept.take_for_job(job.id) is None

    receipt = _on_own_url(svc, job.id, payload)

    assert (receipt.status, receipt.counted_as, receipt.answer["outcome"]) == (202, "kept", "kept_until_submitted")
    assert svc.jobs.get(job.id).status == st.QUEUED
    assert json.loads(svc.store.kept.take_for_job(job.id)) == payload


def test_a_static_callback_is_a_hint_its_tracked_job_asks_bfl_and_one_not_tracked_yet_is_kept(svc):
    job = tracked_job(svc, "task-tracked")

    receipt = _on_static_url(svc, ready_payload("task-tracked", SAMPLE))

    # No job is named to whoever posted it, and nothing of its body is taken: BFL is asked.
    assert (receipt.status, receipt.answer) == (200, {"ok": True, "outcome": "confirm_queued"})
    assert (svc.jobs.get(job.id).status, svc.jobs.get(job.id).result_url) == (st.SUBMITTED, None)
    assert svc.redis.hexists(KEYS.check_claims, job.id)  # its check is in line
    early = _on_static_url(svc, ready_payload("task-not-tracked-yet", SAMPLE))
    assert (early.status, early.counted_as, early.answer["outcome"]) == (202, "kept", "kept_until_tracked")
    assert svc.store.kept.was_reported("default", "task-not-tracked-yet")


def test_the_static_secret_changes_no_job_fluxhook_submitted_and_a_wrong_one_is_refused(svc):
    job = _submitted(svc)

    kept = _on_static_url(svc, ready_payload("task-own", SAMPLE))
    with pytest.raises(CallbackRefused) as forged:
        _on_static_url(svc, ready_payload("task-anything", SAMPLE), secret="not-the-static-secret")

    # Answered as for a task nobody tracks: the static URL tells nobody that fluxhook submitted it.
    assert (kept.status, kept.job_id, kept.answer["outcome"]) == (202, None, "kept_until_tracked")
    assert (forged.value.reason, forged.value.status) == ("bad_secret", 401)
    assert (svc.jobs.get(job.id).status, svc.jobs.get(job.id).webhooks) == (st.SUBMITTED, 0)
    assert not svc.redis.hexists(KEYS.check_claims, job.id)
    assert not svc.store.kept.was_reported("default", "task-anything")
