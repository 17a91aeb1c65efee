"""Callbacks that came before their job knew its task (fluxhook/lifecycle/steps/kept_callbacks.py), on a real Redis: one
proven by an account's static secret is kept for the task and applied to the job that tracks it through that account,
never to a job fluxhook submitted; one proven by a job's own secret is applied to that job alone, and dropped if it
names another task; each applied once; an account's secret may keep only so much. Over HTTP:
tests/e2e/callbacks/test_static_callback_scope.py and test_callback_races.py."""

from __future__ import annotations

import json
import time

import pytest

from conftest import ready_payload
from fluxhook.core import transitions as st
from fluxhook.core.errors import RateLimited
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.lifecycle.steps.kept_callbacks import RETRY_AFTER, apply_kept_callback, keep_callback, keep_early_callback
from fluxhook.store.kept_callbacks import KEPT_BYTES_PER_ACCOUNT

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


def _job(svc, bfl_id: str | None, *, tracked: bool = True, account: str = "eu") -> Job:
    """A job of task ``bfl_id`` (None: its submission's answer is not recorded yet): tracked, or submitted by
    fluxhook (with a slot pool)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED if bfl_id else st.QUEUED, bfl_id=bfl_id,
                                 model="flux-2-pro", pool=None if tracked else "default", account=account,
                                 created_at=now, updated_at=now, submitted_at=now))
    return job


def test_a_static_callback_kept_for_a_task_is_applied_once_to_the_job_that_tracks_it(svc):
    assert keep_callback(svc, "eu", "task-early", _ready("task-early")) is None  # nobody tracks it yet
    job = _job(svc, "task-early")

    assert apply_kept_callback(svc, job) == ReportOutcome.DOWNLOAD_QUEUED

    applied = svc.jobs.get(job.id)
    assert (applied.status, applied.result_url, applied.webhooks) == (st.READY, SAMPLE, 1)
    assert apply_kept_callback(svc, applied) is None  # taken: nothing left to apply


def test_a_task_tracked_between_the_look_up_and_the_keep_is_applied_at_once(svc):
    job = _job(svc, "task-raced")

    assert keep_callback(svc, "eu", "task-raced", _ready("task-raced")) == ReportOutcome.DOWNLOAD_QUEUED

    assert svc.jobs.get(job.id).status == st.READY
    assert svc.store.kept.take_for_task("eu", "task-raced") is None


def test_a_static_callback_applies_neither_to_a_job_fluxhook_submitted_nor_through_another_account(svc):
    keep_callback(svc, "eu", "task-submitted", _ready("task-submitted"))
    keep_callback(svc, "eu", "task-of-us", _ready("task-of-us"))
    submitted = _job(svc, "task-submitted", tracked=False)
    of_us = _job(svc, "task-of-us", account="us")

    assert apply_kept_callback(svc, submitted) is None
    assert apply_kept_callback(svc, of_us) is None

    assert svc.jobs.get(submitted.id).status == st.SUBMITTED and svc.jobs.get(of_us.id).status == st.SUBMITTED
    assert svc.store.kept.take_for_task("eu", "task-submitted") is not None  # left alone, not taken


def test_an_early_callback_is_applied_to_its_own_job_once_it_knows_the_task_it_names(svc):
    job = _job(svc, None, tracked=False)
    assert keep_early_callback(svc, job.id, _ready("task-its-own")) is None  # no task yet: kept

    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id="task-its-own")
    outcome = apply_kept_callback(svc, svc.jobs.get(job.id))

    assert outcome == ReportOutcome.DOWNLOAD_QUEUED
    assert (svc.jobs.get(job.id).status, svc.jobs.get(job.id).result_url) == (st.READY, SAMPLE)


def test_an_early_callback_naming_another_task_than_its_jobs_is_dropped(svc):
    job = _job(svc, None, tracked=False)
    keep_early_callback(svc, job.id, _ready("task-someone-elses"))
    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id="task-its-own")

    assert apply_kept_callback(svc, svc.jobs.get(job.id)) is None

    assert svc.jobs.get(job.id).status == st.SUBMITTED
    assert svc.store.kept.take_for_job(job.id) is None  # dropped, not kept for a later attempt


def test_an_accounts_secret_keeps_only_so_much_for_tasks_nobody_tracks_other_accounts_keep_on(svc):
    # Bodies of nearly 1 MiB, the largest a callback may be: kept sealed, each still within 1 MiB.
    large = b"x" * (2**20 - 64)
    for n in range(KEPT_BYTES_PER_ACCOUNT // 2**20):
        keep_callback(svc, "eu", f"task-made-up-{n}", large)

    with pytest.raises(RateLimited) as refused:
        keep_callback(svc, "eu", "task-one-more", large)

    assert 0 < refused.value.retry_after <= RETRY_AFTER
    assert svc.store.kept.take_for_task("eu", "task-one-more") is None
    assert keep_callback(svc, "us", "task-of-us", _ready("task-of-us")) is None
    assert svc.store.kept.take_for_task("us", "task-of-us") == _ready("task-of-us")
