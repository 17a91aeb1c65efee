"""A queued job of a revoked key ending (fluxhook/lifecycle/steps/revoked_jobs.py), on a real Redis: ``failed`` /
``key_revoked`` with a timeline entry, its kept input gone; a job that left ``queued`` meanwhile is left as it is.
Through revocation: tests/unit/lifecycle/test_revoking.py; through a submission: steps/test_submission.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import revoked_jobs, task_inputs, timeline

DB = 15  # make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _queued(svc) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", input=None,
              pool=pool_for("flux-2-pro", svc.config.bfl_model_limits), created_at=now, updated_at=now,
              key_id="key_00000000000000dd")
    svc.jobs.create(job)
    assert task_inputs.keep(svc, job.id, {"prompt": "x" * 400_000}, 400_014) is None  # kept in storage
    return job


def _stored(svc, job: Job) -> bool:
    kept = svc.storage.open(task_inputs.key_for(job.id))
    if kept is not None:
        kept.close()
    return kept is not None


def test_a_queued_job_of_a_revoked_key_fails_unpaid_and_its_input_goes(svc):
    job = _queued(svc)
    assert _stored(svc, job)

    assert revoked_jobs.fail(svc, job) is True

    ended = svc.jobs.get(job.id)
    assert ended.status == st.FAILED and ended.error["code"] == revoked_jobs.KEY_REVOKED
    assert "nothing was charged" in ended.error["message"]
    assert [e["outcome"] for e in timeline.recent(svc.store.timeline, job.id) if e["kind"] == "submission"] == [
        revoked_jobs.KEY_REVOKED]
    assert not _stored(svc, job)


def test_a_job_no_longer_queued_is_left_as_it_is(svc):
    job = _queued(svc)
    assert svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id="task-1", account="default")

    assert revoked_jobs.fail(svc, job) is False

    assert svc.jobs.get(job.id).status == st.SUBMITTED and _stored(svc, job)
    assert [e for e in timeline.recent(svc.store.timeline, job.id) if e["kind"] == "submission"] == []
