"""The checks of due jobs in-process (fluxhook/lifecycle/checking.py, the sweep that queues them) on a Redis database
of their own, against the simulator or a spy host: a 429 on a poll, a claim taken twice, a submission and a
download task cut off with its worker, a sweep with nothing due. A submission cut off with its
process: steps/test_lost_sends.py. Fallback polling and BFL slots through the
Procfile's processes: tests/e2e/worker/test_checking.py."""

from __future__ import annotations

import time

import pytest
import requests
from rq import Worker
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from devtools.stack import SIMULATOR_KEY
from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.steps.enqueueing import DOWNLOAD_RETRIES, download_task, queue_handed
from fluxhook.lifecycle.sweep import sweep
from helpers import tracked_job


def _bfl_task(sim, prompt: str) -> dict:
    """Submit a task to the simulator directly, as a user's own app would."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture()
def services(make_services):
    """Services on database 4, wired to the simulator (or, with BFL_API_BASE overridden, a spy)."""
    return lambda **overrides: make_services(4, **overrides)


def test_a_429_on_a_poll_waits_for_retry_after(services, spy):
    svc = services(BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")
    spy.route("/v1/get_result?id=busy-task", 429, b'{"detail": "slow down"}', {"Retry-After": "40"})
    job = tracked_job(svc, "busy-task", due=time.time() - 1)
    report = sweep(svc)
    assert report.due == 1
    [check] = svc.store.checks.take(10)
    assert check.job_id == job.id
    claim = check.claim
    before = time.time()
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.RESCHEDULED
    after = svc.jobs.get(job.id)
    assert after.status == st.SUBMITTED and after.polls == 1
    assert svc.jobs.due_at(job.id) >= before + 40 - 0.001  # scores keep milliseconds
    assert spy.hits == ["/v1/get_result?id=busy-task"]


def test_a_check_whose_claim_was_taken_does_nothing(services, sim):
    svc = services()
    task = _bfl_task(sim, "[pending] claimed twice")
    job = tracked_job(svc, task["id"], due=time.time() - 1)
    assert sweep(svc).due == 1
    [check] = svc.store.checks.take(1)
    claim = check.claim
    assert checking.check_job(svc, job.id, claim) == "pending"
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.SKIPPED
    assert svc.jobs.get(job.id).polls == 1 and sim.task(task["id"])["polls"] == 1
    # Pending: due again on the schedule, not before.
    assert svc.jobs.due_at(job.id) > time.time()


def test_a_download_task_cut_off_with_its_worker_is_queued_again(services):
    # A killed worker's task stays "started" until RQ's maintenance finds its heartbeat lapsed,
    # and RQ queues such a task again only if it has retries left. So a download cut off once its job was
    # stored, before its thumbnail, runs again and makes it (test_storing.py).
    svc = services()
    svc.jobs.create(Job(id="job_cut_off", status=st.READY, model="flux-2-pro"))
    queue_handed(svc, svc.store.effects.apply([download_task("job_cut_off", "flux-2-pro")]))
    queue = svc.queue
    assert queue.count == 1
    worker = Worker([queue], connection=svc.redis)
    worker.register_birth()
    task, _ = worker.dequeue_job_and_maintain_ttl(timeout=1)
    worker.prepare_execution(task)
    worker.prepare_job_execution(task)  # then the worker dies without a word
    assert task.get_status() == JobStatus.STARTED and queue.count == 0

    StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)  # long after its last heartbeat
    # Retried after its first interval, one retry spent.
    task.refresh()
    assert (task.get_status(), task.retries_left) == (JobStatus.SCHEDULED, DOWNLOAD_RETRIES - 1)
    assert queue.scheduled_job_registry.get_job_ids() == [task.id]


def test_a_sweep_with_nothing_due_claims_nothing(services):
    svc = services()
    for n in range(50):
        tracked_job(svc, f"future-{n}", due=time.time() + 600)
    report = sweep(svc)
    assert (report.due, report.deadlines) == (0, 0)
    assert svc.store.checks.waiting() == 0
