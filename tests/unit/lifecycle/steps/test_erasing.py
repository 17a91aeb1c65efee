"""Erasing a job (fluxhook/lifecycle/steps/erasing.py) on a real Redis: ``asked`` marks an ended job that holds its
slot, and ``erase_if_asked`` erases it only once that slot is given back, never one no DELETE asked for. The erasing
itself and the DELETE's rule: tests/unit/lifecycle/test_removal.py."""

from __future__ import annotations

import pytest

from ending_helpers import queued_job
from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.lifecycle import canceling
from fluxhook.lifecycle.steps import erasing, submission
from fluxhook.lifecycle.steps.callers import ADMIN

DB = 6


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _canceled_running(svc, prompt: str) -> Job:
    """A job canceled while BFL runs its task: it keeps its slot."""
    job = queued_job(svc, prompt, send_here=True)
    assert submission.submit(svc, job.id) == st.SUBMITTED
    canceling.cancel_job(svc, ADMIN, job.id)
    assert svc.slots.holds(job)
    return svc.jobs.get(job.id)


def test_an_asked_job_is_erased_only_once_its_slot_is_given_back(svc, sim):
    job = _canceled_running(svc, "[pending] asked while BFL runs it")

    assert erasing.asked(svc, job.id) is True
    assert svc.jobs.get(job.id).delete_asked_at is not None
    assert erasing.erase_if_asked(svc, job.id) is False and svc.jobs.get(job.id) is not None  # still holds it

    # Given back by a step that erases nothing itself (a lapsed lease, say): the next look erases it.
    assert svc.jobs.let_go(job.id).freed
    assert erasing.erase_if_asked(svc, job.id) is True
    assert svc.jobs.get(job.id) is None and erasing.erase_if_asked(svc, job.id) is False


def test_a_job_no_delete_asked_for_stays_and_one_that_holds_nothing_is_the_callers_to_erase(svc, sim):
    job = _canceled_running(svc, "[pending] only canceled")
    assert svc.jobs.let_go(job.id).freed
    assert erasing.erase_if_asked(svc, job.id) is False and svc.jobs.get(job.id).status == st.CANCELED

    # Its slot given back before the mark: ``asked`` says so, and its caller erases it at once.
    assert erasing.asked(svc, job.id) is False
    assert erasing.erase(svc, job.id) is True and svc.jobs.get(job.id) is None
