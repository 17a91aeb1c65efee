"""Callbacks that came before their job knew its task (fluxhook/lifecycle/steps/kept_callbacks.py), on a real Redis: a
report on the static URL for a task nobody tracks is kept as a mark (never its body) and makes the job that later
tracks it through that account ask BFL once, never a job fluxhook submitted; the room is a fixed bitmap, never
refused and never emptied by another's flood; one proven by a job's own secret is applied to that job alone, and
dropped if it names another task. Over HTTP: tests/e2e/callbacks_tenancy/ and tests/e2e/callbacks/."""

from __future__ import annotations

import json
import time

import pytest

from conftest import ready_payload
from fluxhook.core import job as st
from fluxhook.core.job import EARLY_KEPT, Job, new_job_id
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_callback, keep_callback, keep_early_callback
from fluxhook.store.kept_callbacks import MARK_BYTES
from fluxhook.store.keys import KEYS

DB = 15  # no other unit test uses it; make_services flushes it before and after
SAMPLE = "https://delivery.fluxhook-test.invalid/sample.png"
ACCOUNTS = {"BFL_ACCOUNTS": "eu,us",
            "BFL_EU_API_KEY": "eu-secret-key", "BFL_EU_API_BASE": "https://api.eu.example",
            "BFL_EU_WEBHOOK_SECRET": "eu-static-secret",
            "BFL_US_API_KEY": "us-secret-key", "BFL_US_API_BASE": "https://api.us.example",
            "BFL_US_WEBHOOK_SECRET": "us-static-secret",
            "API_HOST_ALLOWLIST": "api.eu.example,api.us.example"}


@pytest.fixture()
def svc(make_services):
    return make_services(DB, **ACCOUNTS)


def _ready(bfl_id: str) -> bytes:
    return json.dumps(ready_payload(bfl_id, SAMPLE)).encode()


def _job(svc, bfl_id: str | None, *, tracked: bool = True, account: str = "eu", key_id: str | None = None) -> Job:
    """A job of task ``bfl_id`` (None: its submission's answer is not recorded yet): tracked, or submitted by
    fluxhook (with a slot pool)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED if bfl_id else st.QUEUED, bfl_id=bfl_id,
                                 model="flux-2-pro", pool=None if tracked else "default", account=account,
                                 created_at=now, updated_at=now, submitted_at=now, key_id=key_id))
    return job

def _confirm_queued(svc, job: Job) -> bool:
    return bool(svc.redis.hexists(KEYS.check_claims, job.id))  # its check is in line


def test_a_static_report_kept_for_a_task_makes_the_job_tracking_it_ask_bfl_and_nothing_else(svc):
    assert keep_callback(svc, "eu", "task-early") == []  # nobody tracks it yet: kept
    job = _job(svc, "task-early")

    assert apply_kept_callback(svc, job) == ReportOutcome.CONFIRM_QUEUED

    hinted = svc.jobs.get(job.id)
    # Only a poll of BFL is queued: no URL is taken from the report, whoever sent it.
    assert (hinted.status, hinted.result_url, hinted.webhooks) == (st.SUBMITTED, None, 1)
    assert _confirm_queued(svc, job)


def test_a_task_tracked_before_the_report_is_hinted_at_once_each_owners_job(svc):
    one, other = _job(svc, "task-raced"), _job(svc, "task-raced", key_id="key_other")

    hinted = keep_callback(svc, "eu", "task-raced")

    assert sorted(job.id for job, _ in hinted) == sorted([one.id, other.id])
    assert {outcome for _, outcome in hinted} == {ReportOutcome.CONFIRM_QUEUED}
    assert _confirm_queued(svc, one) and _confirm_queued(svc, other)


def test_a_static_report_reaches_neither_a_job_fluxhook_submitted_nor_another_accounts(svc):
    keep_callback(svc, "eu", "task-submitted")
    keep_callback(svc, "eu", "task-of-us")
    submitted = _job(svc, "task-submitted", tracked=False)
    of_us = _job(svc, "task-of-us", account="us")

    assert apply_kept_callback(svc, submitted) is None
    assert apply_kept_callback(svc, of_us) is None
    assert keep_callback(svc, "eu", "task-of-us") == []

    assert not _confirm_queued(svc, submitted) and not _confirm_queued(svc, of_us)
    assert svc.jobs.get(of_us.id).webhooks == 0


def test_an_early_callback_is_applied_to_its_own_job_once_it_knows_the_task_it_names(svc):
    job = _job(svc, None, tracked=False)
    assert keep_early_callback(svc, job.id, _ready("task-its-own")) is None  # no task yet: kept

    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id="task-its-own")
    outcome = apply_kept_callback(svc, svc.jobs.get(job.id))

    assert outcome == ReportOutcome.DOWNLOAD_QUEUED
    assert (svc.jobs.get(job.id).status, svc.jobs.get(job.id).result_url) == (st.READY, SAMPLE)


def test_an_early_callback_for_a_job_ended_or_gone_meanwhile_keeps_nothing_and_flags_nothing(svc):
    ended, gone = _job(svc, None, tracked=False), _job(svc, None, tracked=False)
    assert svc.jobs.transition(ended.id, st.CANCELED, error={"code": "canceled", "message": "x"})
    svc.jobs.delete(gone.id)

    assert keep_early_callback(svc, ended.id, _ready("task-late")) == ReportOutcome.DUPLICATE
    assert keep_early_callback(svc, gone.id, _ready("task-late")) == ReportOutcome.GONE

    assert not svc.redis.exists(KEYS.kept_for_job(ended.id), KEYS.kept_for_job(gone.id))
    assert not svc.redis.hexists(KEYS.job(ended.id), EARLY_KEPT)  # nothing would ever drop it from an ended record
    assert not svc.redis.exists(KEYS.job(gone.id))  # not made again


def test_an_early_callback_naming_another_task_than_its_jobs_is_dropped(svc):
    job = _job(svc, None, tracked=False)
    keep_early_callback(svc, job.id, _ready("task-someone-elses"))
    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id="task-its-own")

    assert apply_kept_callback(svc, svc.jobs.get(job.id)) is None

    assert svc.jobs.get(job.id).status == st.SUBMITTED
    assert svc.store.kept.take_for_job(job.id) is None  # dropped, not kept for a later attempt


def test_a_flood_of_made_up_tasks_fills_no_room_and_takes_no_report_from_another(svc):
    keep_callback(svc, "eu", "task-of-v")
    for n in range(5000):
        keep_callback(svc, "eu", f"task-made-up-{n}")

    # What the flood made Redis keep: the account's one bitmap this hour, whatever its size.
    kept = [key for key in svc.redis.scan_iter(KEYS.kept_marks("eu", "*"))]
    assert len(kept) == 1 and svc.redis.strlen(kept[0]) <= MARK_BYTES
    assert svc.store.kept.was_reported("eu", "task-of-v")
    assert not svc.store.kept.was_reported("us", "task-of-v")
    assert apply_kept_callback(svc, _job(svc, "task-of-v")) == ReportOutcome.CONFIRM_QUEUED
