"""The worker's sweep thread (worker/sweeping.py): it runs the fallback sweep once a second by itself, no RQ task
in between, while its indexes hold anything; at rest it waits for its process's work, one command a look; it stops at
once when told to. What a sweep does: tests/unit/lifecycle/test_sweep.py."""

from __future__ import annotations

import time

from devtools.processes import wait_until
from fluxhook.lifecycle.steps.enqueueing import CHECK_TASK
from helpers import commands_during, run_older_releases_task, tracked_job
from worker import sweeping
from worker.activity import ACTIVITY


def test_the_sweep_thread_queues_a_check_for_each_job_that_comes_due_and_stops_at_once(make_services):
    svc = make_services(6)
    sweeper = sweeping.start(svc)
    try:
        first = tracked_job(svc, "task-due-first", due=time.time() - 1)
        ACTIVITY.noted()  # by the sender that sent it: the sweeper at rest looks at once
        wait_until(lambda: svc.control_queue.count == 1, timeout=5, message="the sweep to claim the due job")
        later = tracked_job(svc, "task-due-later", due=time.time() + 1)  # a sweep or two on: the next ones see it
        wait_until(lambda: svc.control_queue.count == 2, timeout=5, message="a later sweep to claim the next job")
    finally:
        started = time.monotonic()
        sweeper.stop()
        assert not sweeper.is_alive() and time.monotonic() - started < 1.0
    checks = svc.control_queue.get_jobs()
    # Only the checks: the sweep itself is no task of RQ's.
    assert [(task.func_name, task.args[0]) for task in checks] == [(CHECK_TASK, first.id), (CHECK_TASK, later.id)]


def test_an_older_releases_sweep_task_queued_before_a_rolling_deploy_ends_without_failing(make_services):
    svc = make_services(6)
    # As an older release's cron queued it every second, by name: its worker may still run beside this one.
    run_older_releases_task(svc.control_queue, "worker.sweep.sweep")


def test_at_rest_the_sweep_thread_costs_one_command_a_look_and_its_process_s_work_wakes_it(make_services):
    svc = make_services(6)
    sweeper = sweeping.start(svc)
    try:
        sent = commands_during(svc.redis, 6, lambda: time.sleep(1.5))
        assert [c["command"] for c in sent if not c["command"].startswith("SELECT")] == []  # it looked at its start
        tracked_job(svc, "task-due", due=time.time() - 1)
        ACTIVITY.noted()
        wait_until(lambda: svc.control_queue.count == 1, timeout=2, message="the woken sweep to claim the due job")
    finally:
        sweeper.stop()
