"""The worker's senders apart per BFL account (worker/sending.py, lua/slots_dispatch.lua): account X whose
submissions hang holds X's own senders and no other's, so account Y's job is sent as soon as with X idle (measured in
the same test), and X's jobs left in line go as X's senders free. A BFL stand-in whose submissions hang
(devtools/hanging_bfl.py) is X; the suite's simulator is Y."""

from __future__ import annotations

import time

import pytest

from devtools.hanging_bfl import HangingBFL
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from worker import dispatcher, run, sending

DB = 6
# Senders per account, and X's jobs: more than X's senders, so X's line keeps jobs while every one of them hangs.
SENDERS = 2
X_JOBS = 3 * SENDERS
# How soon Y's job must be at BFL once queued: the simulator answers at once.
WITHIN = 1.1


@pytest.fixture()
def hanging():
    bfl = HangingBFL()
    yield bfl
    bfl.stop()


@pytest.fixture()
def svc(make_services, sim, hanging):
    sim.settings(submit_delay=0.0, task_delay=None)  # Y's tasks stay Pending
    return make_services(DB, BFL_ACCOUNTS="x,y", BFL_X_API_KEY="x-secret-key", BFL_X_API_BASE=hanging.url,
                         BFL_Y_API_KEY=SIMULATOR_KEY, BFL_Y_API_BASE=sim.url,
                         API_HOST_ALLOWLIST=f"{hanging.host},{sim.url.removeprefix('http://')}")


def _queue(svc, account: str) -> Job:
    """A job made with an admin token that may go only through ``account``, queued in its line."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool="default",
              route=f"a:{account}", input={"prompt": f"[pending] {account}'s job"}, created_at=now, updated_at=now)
    svc.jobs.create(job)
    assert not svc.slots.acquire(job, send_here=False)
    return job


def _sent_after(svc, account: str) -> float:
    """The seconds from queueing a job of ``account`` to BFL having it."""
    queued = time.monotonic()
    job = _queue(svc, account)
    wait_until(lambda: svc.jobs.get(job.id).status == st.SUBMITTED, timeout=10, message=f"{account}'s job sent")
    return time.monotonic() - queued


def test_an_account_whose_submissions_hang_delays_no_other_accounts_send(svc, hanging):
    senders = dispatcher.Dispatcher(run.wakes_for(svc.config), [sending.Sends(svc, SENDERS)]).started()
    try:
        idle = _sent_after(svc, "y")  # X idle: nothing of X's in line or being sent

        x_jobs = [_queue(svc, "x") for _ in range(X_JOBS)]
        wait_until(lambda: hanging.hanging == SENDERS, timeout=5, message="every sender of X's in a hanging send")
        slow = _sent_after(svc, "y")
        # Y's job went while every sender of X's still waited for BFL, and X's other jobs waited in line.
        assert hanging.submissions == SENDERS
        assert [svc.jobs.get(job.id).status for job in x_jobs].count(st.QUEUED) == X_JOBS
        # BFL answers X: each sender of X's that ends wakes the resting dispatcher for X's jobs left in line.
        hanging.release.set()
        wait_until(lambda: all(svc.jobs.get(job.id).status == st.SUBMITTED for job in x_jobs), timeout=10,
                   message="X's jobs left in line to be sent as X's senders free")
    finally:
        hanging.release.set()
        senders.stop()
    assert idle <= WITHIN and slow <= WITHIN, f"Y's job sent {idle:.2f} s after queued with X idle, {slow:.2f} s with X hanging"
    print(f"Y's job at BFL {idle:.3f} s after queued with X idle, {slow:.3f} s with X's submissions hanging")
