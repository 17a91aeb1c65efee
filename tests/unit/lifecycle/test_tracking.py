"""Tracking a task submitted elsewhere (fluxhook/lifecycle/tracking.py) in-process on a real Redis: the task becomes a
job of its own per owner, tracked once whoever asks again, first polled after the callback grace (at once for a
model that takes no webhook); a report kept before the track makes it ask BFL; another key's track of the same task
gets a job of its own and changes nothing of the first, while a task fluxhook submitted for one key is refused
(409) to another, naming nothing of it; and a key's requests_per_minute counts only the tracks it accepted. Over
HTTP: tests/e2e/callbacks_tenancy/."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.errors import RateLimited, TaskNotTrackable
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.kept_callbacks import keep_callback
from fluxhook.lifecycle.tracking import TrackRequest, track_task
from fluxhook.store.keys import KEYS

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
    assert before + GRACE - 0.001 <= svc.jobs.due_at(job.id) <= time.time() + GRACE + 0.001  # scores keep ms
    assert [j.id for j in svc.jobs.trackers("task-elsewhere")] == [job.id]
    assert svc.jobs.get_by_bfl_id("task-elsewhere") is None  # that index is for jobs fluxhook submitted


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


def test_a_report_kept_before_the_track_makes_it_ask_bfl_at_once(svc):
    keep_callback(svc, "default", "task-called-back")

    job, created = track_task(svc, ADMIN, TrackRequest("task-called-back", model="flux-2-pro"))

    assert created
    # Nothing of the report is believed: the job asks BFL (its check is in line), counted as a callback.
    assert (job.status, job.result_url, job.webhooks) == (st.SUBMITTED, None, 1)
    assert svc.redis.hexists(KEYS.check_claims, job.id)


def test_two_keys_tracking_one_task_each_get_a_job_of_their_own_and_neither_changes_the_others(svc):
    first, second = _key(svc), _key(svc, requests_per_minute=2)
    theirs, _ = track_task(svc, first, TrackRequest("task-shared", metadata={"by": "first"}))

    mine, created = track_task(svc, second, TrackRequest("task-shared", metadata={"by": "second"}))
    again, created_again = track_task(svc, second, TrackRequest("task-shared"))

    assert created and not created_again and again.id == mine.id != theirs.id
    assert (mine.key_id, mine.metadata) == (second.key_id, {"by": "second"})
    assert svc.jobs.get(theirs.id) == theirs
    assert sorted(j.id for j in svc.jobs.trackers("task-shared")) == sorted([theirs.id, mine.id])


def test_a_task_fluxhook_submitted_answers_its_own_keys_job_and_another_keys_track_is_refused_naming_nothing(svc):
    owner, other = _key(svc), _key(svc, requests_per_minute=1)
    now = time.time()
    submitted, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool="default",
                                       key_id=owner.key_id, created_at=now, updated_at=now))
    assert svc.jobs.transition(submitted.id, st.SUBMITTED, bfl_id="task-submitted")
    before = svc.jobs.get(submitted.id)

    own, created_own = track_task(svc, owner, TrackRequest("task-submitted"))
    with pytest.raises(TaskNotTrackable) as refused:
        track_task(svc, other, TrackRequest("task-submitted", metadata={"by": "other"}))

    assert (own.id, created_own) == (submitted.id, False)
    assert refused.value.status == 409
    assert all(word not in refused.value.message for word in (owner.key_id, submitted.id, owner.key.name))
    assert svc.jobs.trackers("task-submitted") == [] and svc.jobs.get(submitted.id) == before
    # Refused, it counted nothing against the key's requests_per_minute: its next track goes through.
    assert track_task(svc, other, TrackRequest("task-sent-elsewhere"))[1]


def test_an_admins_track_of_a_task_fluxhook_submitted_for_a_key_is_a_job_of_the_admins_own(svc):
    owner = _key(svc)
    now = time.time()
    submitted, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool="default",
                                       key_id=owner.key_id, created_at=now, updated_at=now))
    assert svc.jobs.transition(submitted.id, st.SUBMITTED, bfl_id="task-of-a-key")

    admins, created = track_task(svc, ADMIN, TrackRequest("task-of-a-key"))

    assert created and admins.id != submitted.id and admins.key_id is None
    assert svc.jobs.get(submitted.id).key_id == owner.key_id


def test_a_key_past_its_requests_per_minute_is_told_when_to_retry_and_nothing_is_tracked(svc):
    caller = _key(svc, requests_per_minute=1)
    track_task(svc, caller, TrackRequest("task-first"))

    with pytest.raises(RateLimited) as limited:
        track_task(svc, caller, TrackRequest("task-second"))

    assert 0 < limited.value.retry_after <= 60
    assert svc.jobs.trackers("task-second") == []
