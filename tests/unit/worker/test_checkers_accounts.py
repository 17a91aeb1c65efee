"""The worker's checkers apart per BFL account (worker/checkers.py, fluxhook/store/check_line.py): account X whose
polls BFL answers only after 10 s holds X's own checkers and no other's, so account Y's job that BFL failed reads
``failed`` within 1.1 s of BFL's failure, as it does with X idle (measured in the same test); X's checks left in line
run as X's checkers free. A spy host plays both accounts' BFL, each with its own key."""

from __future__ import annotations

import json
import threading
import time

import pytest

from devtools.processes import wait_until
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.applying import Origin, apply_report
from fluxhook.lifecycle.sweep import sweep
from worker import checkers, dispatcher, run

DB = 6
# How long BFL takes to answer a poll of X's tasks, and how soon Y's failed job must read failed.
X_POLL_SECONDS = 10.0
WITHIN = 1.1
# Checkers per account (WORKER_CHECK_CONCURRENCY's default), and X's checks due: more than X's checkers, so X's line
# keeps checks waiting while every one of its checkers hangs.
CHECKERS = 2
X_JOBS = 3 * CHECKERS


@pytest.fixture()
def svc(make_services, spy):
    return make_services(DB, BFL_ACCOUNTS="x,y", BFL_X_API_KEY="x-secret-key", BFL_X_API_BASE=spy.url,
                         BFL_Y_API_KEY="y-secret-key", BFL_Y_API_BASE=spy.url,
                         API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _poll_path(task: str) -> str:
    return f"/v1/get_result?id={task}"


def _answer(task: str, status: str) -> tuple[int, dict, bytes]:
    """BFL's answer to a poll of ``task``: HTTP status, headers and body."""
    return 200, {"Content-Type": "application/json"}, json.dumps({"id": task, "status": status}).encode()


def _submitted(svc, account: str, due: float) -> Job:
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 key_id=f"key_{account}", created_at=now, updated_at=now, submitted_at=now,
                                 account=account), due=due)
    return job


def _failed_after(svc, spy, job: Job) -> float:
    """BFL fails Y's running ``job`` and says so by callback: the seconds until the job reads ``failed``."""
    status, headers, body = _answer(job.bfl_id, "Error")
    spy.route(_poll_path(job.bfl_id), status, body, headers)
    failed_at = time.monotonic()
    apply_report(svc, job.id, BFLReport(bfl_id=job.bfl_id, status=st.BFL_ERROR), Origin("webhook", confirmed=False))
    wait_until(lambda: svc.jobs.get(job.id).status == st.FAILED, timeout=X_POLL_SECONDS + 5,
               message="Y's job to read failed")
    return time.monotonic() - failed_at


def test_an_account_whose_polls_bfl_answers_in_10_s_delays_no_other_accounts_check(svc, spy):
    released = threading.Event()
    x_jobs = [_submitted(svc, "x", due=time.time() - 1) for _ in range(X_JOBS)]
    for job in x_jobs:
        spy.route(_poll_path(job.bfl_id), 200,
                  lambda task=job.bfl_id: (released.wait(X_POLL_SECONDS), _answer(task, "Pending"))[1])
    alone, beside_x = (_submitted(svc, "y", due=time.time() + 3600) for _ in range(2))
    pool = dispatcher.Dispatcher(run.wakes_for(svc.config), [checkers.Checks(svc, CHECKERS)]).started()
    try:
        idle = _failed_after(svc, spy, alone)  # X idle: nothing of X's in line or running

        assert sweep(svc).due == X_JOBS
        x_polls = lambda: sum(spy.hits.count(_poll_path(job.bfl_id)) for job in x_jobs)  # noqa: E731
        wait_until(lambda: x_polls() == CHECKERS, timeout=5, message="every checker of X's to poll X's BFL")
        slow = _failed_after(svc, spy, beside_x)
        # Y's check went while every checker of X's still waited for BFL, and X's other checks waited in line.
        assert x_polls() == CHECKERS and svc.store.checks.waiting_by_account()["x"] == X_JOBS - CHECKERS
        # BFL answers X: each checker of X's that ends wakes the resting dispatcher for X's checks left in line.
        released.set()
        wait_until(lambda: x_polls() == X_JOBS, timeout=5, message="X's checks left in line to run as X's checkers free")
    finally:
        released.set()
        pool.stop()
    assert idle <= WITHIN and slow <= WITHIN, f"Y's job failed {idle:.2f} s after BFL with X idle, {slow:.2f} s with X slow"
    print(f"Y's failed job read failed {idle:.3f} s after BFL's failure with X idle, {slow:.3f} s with X's polls "
          f"taking {X_POLL_SECONDS:g} s")
