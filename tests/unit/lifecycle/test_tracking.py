"""Tracking a task submitted elsewhere (fluxhook/lifecycle/tracking.py) in-process on a real Redis: the task becomes a
job of its own, tracked once whoever asks again, first polled after the callback grace (at once for a model that
takes no webhook); a callback kept before the track is applied by it; another key's task is not found, and a key's
requests_per_minute counts only the tracks it accepted. Over HTTP: tests/e2e/callbacks/test_static_callback_scope.py."""

from __future__ import annotations

import json
import time

import pytest

from conftest import ready_payload
from fluxhook.core import transitions as st
from fluxhook.core.errors import JobNotFound, RateLimited
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.kept_callbacks import keep_callback
from fluxhook.lifecycle.tracking import TrackRequest, track_task

DB = 15  # no other unit test uses it; make_services flushes it before and after
GRACE = 2  # the suite's CALLBACK_GRACE_SECONDS
NO_WEBHOOK = "flux-tools/outpainting-v1"  # the catalog says BFL refuses webhook fields for it
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _key(svc, **limits) -> Caller:
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", **limits}, time.time())
    return Caller(key)


def test_a_tracked_task_becomes_a_submitted_job_first_polled_after_the_callback_grace(svc):
    before = time.time()
    request = TrackRequest("task-elsewhere", polling_url="https://api.bfl.ai/v1/get_result?id=task-elsewhere",
                           model="flux-2-pro", metadata={"order": 7}, notify_url="https://app.example.com/hook")

    job, created = track_task(svc, ADMIN, request)

    assert created and job.tracked
    assert (job.status, job.bfl_id, job.model, job.account) == (st.SUBMITTED, "task-elsewhere", "flux-2-pro", "default")
    assert (job.metadata, job.notify_url, job.polling_url) == ({"order": 7}, request.notify_url, request.polling_url)
    assert before + GRACE - 0.001 <= svc.jobs.due_at(job.id) <= time.time() + GRACE  # scores keep milliseconds
    assert svc.jobs.get_by_bfl_id("task-elsewhere").id == job.id


def test_a_task_of_a_model_that_takes_no_webhook_is_polled_at_once(svc):
    job, _ = track_task(svc, ADMIN, TrackRequest("task-no-webhook", model=NO_WEBHOOK))

    assert svc.jobs.due_at(job.id) <= time.time()


def test_a_task_is_tracked_once_asked_again_its_job_is_answered_as_it_is(svc):
    first, created = track_task(svc, ADMIN, TrackRequest("task-twice", metadata={"n": 1}))

    again, created_again = track_task(svc, ADMIN, TrackRequest("task-twice", metadata={"n": 2}))

    assert created and not created_again
    assert again.id == first.id and again.metadata == {"n": 1}
    listed, _ = svc.jobs.list(limit=10)
    assert [j.id for j in listed] == [first.id]


def test_a_callback_kept_before_the_track_is_applied_by_it(svc):
    keep_callback(svc, "default", "task-called-back", json.dumps(ready_payload("task-called-back", SAMPLE)).encode())

    job, created = track_task(svc, ADMIN, TrackRequest("task-called-back", model="flux-2-pro"))

    assert created
    assert (job.status, job.result_url, job.webhooks) == (st.READY, SAMPLE, 1)
    assert svc.store.kept.take_for_task("default", "task-called-back") is None  # applied once, not kept


def test_another_keys_task_is_not_found_and_its_refused_track_counts_nothing(svc):
    owner, other = _key(svc), _key(svc, requests_per_minute=1)
    mine, _ = track_task(svc, owner, TrackRequest("task-of-owner"))

    with pytest.raises(JobNotFound):
        track_task(svc, other, TrackRequest("task-of-owner"))

    assert svc.jobs.get(mine.id).key_id == owner.key_id
    # Its one request a minute is still there to use.
    job, created = track_task(svc, other, TrackRequest("task-of-other"))
    assert created and job.key_id == other.key_id


def test_a_key_past_its_requests_per_minute_is_told_when_to_retry_and_nothing_is_tracked(svc):
    caller = _key(svc, requests_per_minute=1)
    track_task(svc, caller, TrackRequest("task-first"))

    with pytest.raises(RateLimited) as limited:
        track_task(svc, caller, TrackRequest("task-second"))

    assert 0 < limited.value.retry_after <= 60
    assert svc.jobs.get_by_bfl_id("task-second") is None
