"""Watching a job (fluxhook/lifecycle/watching.py, store/watching.py) and the poll schedule it sets, in-process on a
Redis database of its own against the simulator: a newly watched running job comes due at once, a watched one is
polled again at the watched pace, an unwatched one at the unwatched pace. Through the Procfile's processes:
tests/e2e/jobs/test_live_progress.py."""

from __future__ import annotations

import time

import pytest
import requests

from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import job as st
from fluxhook.core import live
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import checking
from fluxhook.lifecycle.sweep import sweep
from fluxhook.lifecycle.watching import watch
from helpers import tracked_job


@pytest.fixture()
def svc(make_services):
    # The default grace (the suite's 2 s makes the unwatched intervals start at 1 s).
    return make_services(4, CALLBACK_GRACE_SECONDS="45")


def _video_task(sim, seconds: float) -> str:
    """A FLUX 3 video task at the simulator, running ``seconds`` (Pending, Reasoning, Generating, Ready)."""
    response = requests.post(f"{sim.url}/v1/flux-3-video", json={"mode": "t2v", "prompt": f"a lighthouse [seconds-{seconds}]"},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _check_due(svc) -> None:
    """Run the sweep, then the checks it put in line, here."""
    sweep(svc, time.time() + 0.01)  # due times keep milliseconds: one set a moment ago may round up past now
    for check in svc.store.checks.take(100):
        checking.check_job(svc, check.job_id, check.claim)


def test_a_newly_watched_running_job_comes_due_at_once_and_watching_again_changes_nothing(svc, sim):
    job = tracked_job(svc, "some-task", due=time.time() + 9)
    before = time.time()
    watch(svc, job.id)
    assert svc.store.watching.watched_for(job.id) > 0
    assert svc.jobs.due_at(job.id) <= before + 0.01
    # Looking again (a stream every few seconds) neither brings it due again nor moves a later time.
    svc.jobs.update(job.id, due=before + 5)
    watch(svc, job.id)
    assert svc.jobs.due_at(job.id) == pytest.approx(before + 5, abs=0.002)


def test_a_longer_look_is_never_shortened_and_the_mark_lapses_by_itself(svc):
    job = tracked_job(svc, "some-task", due=time.time() + 9)
    watch(svc, job.id, seconds=60)
    watch(svc, job.id)
    assert svc.store.watching.watched_for(job.id) > live.WATCH_SECONDS
    other = tracked_job(svc, "other-task", due=time.time() + 9)
    watch(svc, other.id, seconds=0.2)
    assert svc.store.watching.watched_for(other.id) > 0
    wait_until(lambda: svc.store.watching.watched_for(other.id) == 0, timeout=2, interval=0.02)


def test_jobs_that_run_no_task_are_not_brought_due_and_ended_or_unknown_ones_are_not_marked(svc):
    now = time.time()
    queued, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, created_at=now, updated_at=now),
                                due=now + 30)
    watch(svc, queued.id)
    assert svc.store.watching.watched_for(queued.id) > 0  # its first poll, once sent, comes at the watched pace
    assert svc.jobs.due_at(queued.id) == pytest.approx(now + 30, abs=0.002)
    ended = tracked_job(svc, "ended-task", due=now + 30)
    assert svc.jobs.transition(ended.id, st.FAILED, error={"code": "timeout", "message": "x"})
    watch(svc, ended.id)
    assert svc.store.watching.watched_for(ended.id) == 0
    for nothing in (new_job_id(now), "not-a-job-id", ""):
        watch(svc, nothing)
        assert not svc.redis.exists(svc.store.keys.job(nothing))  # no record made for a mark


def test_a_watched_video_is_polled_at_the_watched_pace_and_an_unwatched_one_at_the_unwatched(svc, sim):
    tasks = [_video_task(sim, 30), _video_task(sim, 30)]
    watched, unwatched = (tracked_job(svc, task, due=time.time() + 9) for task in tasks)
    # Into the simulator's Reasoning (from 15 % of the task's 30 s): what the polls must bring back.
    wait_until(lambda: all(sim.task(task)["reported"]["status"] == "Reasoning" for task in tasks), timeout=10)
    watch(svc, watched.id)
    svc.jobs.update(unwatched.id, due=time.time())
    _check_due(svc)
    polled_at = time.time()
    for job_id in (watched.id, unwatched.id):
        job = svc.jobs.get(job_id)
        assert job.polls == 1 and job.bfl_status == "Reasoning" and 0.15 <= job.progress < 0.45
    assert polled_at - 1 <= svc.jobs.due_at(watched.id) - live.WATCHED_POLL_DUE <= polled_at
    unwatched_due = svc.jobs.due_at(unwatched.id)
    assert polled_at - 1 + 0.8 * live.UNWATCHED_POLL_INTERVAL <= unwatched_due <= polled_at + 1.2 * live.UNWATCHED_POLL_INTERVAL
