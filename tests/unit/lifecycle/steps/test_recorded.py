"""A job as recorded now (fluxhook/lifecycle/steps/recorded.py), on a real Redis: read again after a change, and
JobNotFound once it is deleted."""

from __future__ import annotations

import pytest

from fluxhook.core import job as st
from fluxhook.core.errors import JobNotFound
from fluxhook.lifecycle.steps import recorded
from helpers import tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after


def test_the_job_is_read_as_it_is_now_and_not_found_once_deleted(make_services):
    svc = make_services(DB)
    job = tracked_job(svc, "recorded-task")
    assert recorded.current(svc, job.id) == job

    assert svc.jobs.transition(job.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert recorded.current(svc, job.id).status == st.FAILED

    svc.jobs.delete(job.id)
    with pytest.raises(JobNotFound, match=job.id):
        recorded.current(svc, job.id)
