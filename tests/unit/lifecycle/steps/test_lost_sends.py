"""A submission that began and never ended (fluxhook/lifecycle/steps/submission.py, ``recover_lost_send``), in-process
on a real Redis and the simulator: its process died mid-send, so BFL may have the task and charge for it. Its job is
never sent again: once the submission's lease is over, the sweep's check makes it await BFL's word on its task, as a
send whose answer never came (steps/reconciling.py). A job whose sender died before it began goes out again. Over
HTTP, with the web process killed mid-send: tests/e2e/faults/test_lost_sends.py."""

from __future__ import annotations

import threading
import time

import pytest

from devtools.processes import wait_until
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import budget
from fluxhook.credits.reports import spent_today
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps import reconciling, submission
from fluxhook.lifecycle.submitting import take_turns
from fluxhook.store.keys import KEYS
from slot_helpers import _queued

DB = 6


@pytest.fixture()
def svc(make_services):
    return make_services(DB, BFL_DAILY_CREDIT_LIMIT="100")


def _check(svc, job_id: str) -> CheckOutcome:
    """The sweep's check of the job, come due now."""
    claim = time.time() + 60
    svc.jobs.update(job_id, only_in=(st.QUEUED,), due=time.time() - 1)
    assert svc.jobs.claim_due(time.time() + 1, 10, claim) == [job_id]
    return checking.check_job(svc, job_id, claim)


def _sending(svc, prompt: str, lease_left: float):
    """A job handed a slot whose sender took its lock, reserved its price and died mid-send, ``lease_left`` seconds
    before the submission's lease ends."""
    job = _queued(svc.jobs, prompt=prompt)
    assert svc.slots.acquire(job)
    taken = time.time() - submission.SUBMIT_LEASE + lease_left
    assert svc.store.locks.acquire(KEYS.submit_lock(job.id), submission.new_lock_token(taken),
                                   submission.LOST_SEND_TRACE)
    assert budget.reserve(svc, job.id, job.model, job.input).admitted
    return job


def test_a_send_cut_off_with_its_process_is_never_sent_again_and_takes_the_task_bfl_names(svc, sim):
    job = _sending(svc, "cut off mid-send", lease_left=1.0)
    sent = sim.stats()["submitted"]
    held = svc.store.usage.held(job.id)
    assert held > 0

    # Within the lease: looked at again when it ends.
    assert _check(svc, job.id) == CheckOutcome.RESCHEDULED
    assert svc.jobs.due_at(job.id) <= time.time() + 3  # at the lease's end and a second, not a check's hold later
    wait_until(lambda: submission.send_lock(svc, job.id).lost, timeout=5, message="the lease to end")

    # Past it: BFL may have the task, so the job awaits BFL's word on it, its reservation spent meanwhile.
    assert _check(svc, job.id) == CheckOutcome.AWAITING_TASK
    waiting = svc.jobs.get(job.id)
    assert waiting.status == st.SUBMITTED and reconciling.awaits_task(waiting)
    assert not svc.redis.exists(KEYS.submit_lock(job.id))
    assert svc.store.usage.held(job.id) == 0
    # What it counts as spent until BFL says: its request's bound in the catalog, not all that it held to go alone.
    entry = svc.config.catalog.get(job.model)
    assert spent_today(svc, time.time()) == budget.bound(entry, budget.request_size(entry, job.input))
    assert take_turns(svc, 4).jobs == [] and sim.stats()["submitted"] == sent  # never sent again
    # BFL's callback names the task: the job follows it.
    assert reconciling.adopt_task(svc, waiting, BFLReport(bfl_id="task-of-the-lost-send", status=st.BFL_PENDING))
    assert svc.jobs.get(job.id).bfl_id == "task-of-the-lost-send"


def test_an_answer_that_comes_after_the_lease_is_the_task_the_job_follows(svc, sim):
    job = _queued(svc.jobs, prompt="answered late")
    assert svc.slots.acquire(job)
    sim.settings(submit_delay=1.5)
    sent = sim.stats()["submitted"]
    outcome: list[str] = []
    sender = threading.Thread(target=lambda: outcome.append(submission.submit(svc, job.id)))
    sender.start()
    try:
        # Reserved under its lock: sent next, BFL answering 1.5 s later.
        wait_until(lambda: svc.store.usage.held(job.id) > 0, timeout=10, message="the send to begin")
        # The sweep took it for lost meanwhile (its lease over, as for a sender that hung).
        assert submission.recover_lost_send(svc, svc.jobs.get(job.id)) == st.SUBMITTED
        assert reconciling.awaits_task(svc.jobs.get(job.id))
    finally:
        sender.join(timeout=20)
    assert outcome == [st.SUBMITTED]
    followed = svc.jobs.get(job.id)
    assert followed.bfl_id and not reconciling.awaits_task(followed) and followed.polling_url
    assert followed.cost_credits is not None  # BFL's stated price settles the bound once the job ends
    assert sim.stats()["submitted"] == sent + 1


def test_a_job_whose_sender_died_before_it_began_goes_out_again(svc, sim):
    job = _queued(svc.jobs, prompt="never begun")
    assert svc.slots.acquire(job)
    assert _check(svc, job.id) == CheckOutcome.REQUEUED
    assert take_turns(svc, 4).jobs == [job.id]
    assert submission.submit(svc, job.id) == st.SUBMITTED


def test_a_hold_of_another_kind_lapses_by_itself_and_the_job_goes_out_again(svc):
    # A cancel's or a revocation's hold, or the lock of an older release's sender: no lease to read from it.
    job = _queued(svc.jobs, prompt="other hold")
    assert svc.slots.acquire(job)
    svc.redis.set(KEYS.submit_lock(job.id), "revoked", px=1500)
    assert _check(svc, job.id) == CheckOutcome.RESCHEDULED
    assert svc.jobs.due_at(job.id) <= time.time() + 4  # when it lapses and a second, not a check's hold later
    wait_until(lambda: not svc.redis.exists(KEYS.submit_lock(job.id)), timeout=5, message="the hold to lapse")
    assert _check(svc, job.id) == CheckOutcome.REQUEUED
    assert take_turns(svc, 4).jobs == [job.id]
