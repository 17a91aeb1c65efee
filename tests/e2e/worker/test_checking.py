"""Fallback polling and BFL slots through the Procfile's processes, a real Redis and the simulator: lost callbacks end
stored by polling, and never more than BFL_MAX_ACTIVE in flight on a stack of its own (two workers, two sweeps at
once). The checks themselves, in-process: tests/unit/lifecycle/test_checking.py."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from rq.cron import CronScheduler

from conftest import API, service_env, start_test_simulator
from devtools.processes import free_port, start_process, stop_process, wait_until
from devtools.stack import SIMULATOR_KEY, Stack, procfile_commands
from fluxhook.lifecycle.steps import schedule
from fluxhook.store.keys import KEYS


def _bfl_task(sim, prompt: str) -> dict:
    """Submit a task to the simulator directly, as a user's own app would."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _redis_for(stack_env: dict) -> redis.Redis:
    return redis.Redis.from_url(stack_env["REDIS_URL"])


# -- polling only as a fallback ---------------------------------------------------------------

def test_a_lost_callback_ends_stored_by_polling(api, sim):
    job = api.submit("[drop] nobody calls back")
    done = api.wait_for(job["id"], timeout=20)
    assert done["status"] == "stored" and done["source"] == "poll"
    assert done["bfl_status"] == "Ready" and done["attempts"]["webhooks"] == 0
    assert 1 <= done["attempts"]["polls"] <= 2
    assert sim.task(job["bfl_id"])["polls"] == done["attempts"]["polls"]


def test_jobs_whose_callback_arrives_are_never_polled(api, sim):
    normal = [api.submit(f"ordinary {n}") for n in range(3)]
    # Submitted at the same time: once the lost-callback job has been polled (after the grace
    # period), the sweep has had every chance to poll the others too.
    lost = api.submit("[drop] the witness")
    assert api.wait_for(lost["id"], timeout=20)["attempts"]["polls"] >= 1
    for job in normal:
        done = api.wait_for(job["id"])
        assert (done["status"], done["source"], done["attempts"]["polls"]) == ("stored", "webhook", 0)
        assert sim.task(job["bfl_id"])["polls"] == 0


def test_a_tracked_task_whose_callback_is_lost_ends_stored(api, sim):
    task = _bfl_task(sim, "[drop] submitted elsewhere")
    response = api.track(task["id"], polling_url=task["polling_url"])
    assert response.status_code == 201
    done = api.wait_for(response.json()["id"], timeout=20)
    assert (done["status"], done["source"]) == ("stored", "poll")


def test_task_not_found_after_the_grace_period_fails_the_job(api, sim):
    response = api.track("no-such-task-at-bfl")
    assert response.status_code == 201
    done = api.wait_for(response.json()["id"], timeout=20)
    assert done["status"] == "failed" and done["error"]["code"] == "task_not_found"
    assert done["bfl_status"] == "Task not found"


def test_a_job_still_pending_after_an_hour_times_out(api, sim, stack):
    job = api.submit("[pending] forever")
    connection = _redis_for(stack.env)
    # An hour ago, as far as the record knows; due now.
    connection.hset(KEYS.job(job['id']), "submitted_at", repr(time.time() - schedule.POLL_DEADLINE - 1))
    connection.zadd(KEYS.due, {job["id"]: time.time()})
    done = api.wait_for(job["id"], timeout=20)
    assert (done["status"], done["error"]["code"]) == ("failed", "timeout")
    assert done["attempts"]["polls"] >= 1  # BFL was asked one last time
    assert connection.zscore(KEYS.due, job["id"]) is None


# -- slots, on a stack of its own: BFL_MAX_ACTIVE=4 and two workers (two sweeps at once) -----------
# Its BFL is a simulator of its own too, whose counts it asserts: a job the session's stack left queued may reach the
# session's simulator during any test.

@pytest.fixture(scope="module")
def _small_simulator(tmp_path_factory):
    process, client = start_test_simulator(tmp_path_factory.mktemp("small-sim"))
    yield client
    stop_process(process)


@pytest.fixture()
def small_sim(_small_simulator):
    """The slots stack's simulator with its start-up settings and no tasks, before and after the test."""
    _small_simulator.reset()
    yield _small_simulator
    _small_simulator.reset()


@pytest.fixture(scope="module")
def small_stack(redis_server, _small_simulator, _spies, tmp_path_factory):
    var_dir = Path(tmp_path_factory.mktemp("small-stack"))
    env = dict(os.environ)
    env.update(service_env(redis_server, _small_simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{var_dir / 'images'}", BFL_MAX_ACTIVE="4",
                           BFL_MODEL_LIMITS="flux-kontext-max=2,flux-3-video=1"))
    env["REDIS_URL"] = redis_server.url.replace("/0", "/5")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=var_dir)
    running.start()
    second = start_process(["sh", "-c", "exec " + procfile_commands()["worker"]], running.prepare(),
                           log_path=str(var_dir / "worker2.log"))
    yield running
    stop_process(second)
    running.stop()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


@pytest.fixture()
def small(small_stack) -> API:
    return API(small_stack.base_url)


def test_never_more_than_bfl_max_active_in_flight(small, small_sim):
    # Every task is held at BFL until the test ends it, so the first four hold the slots however slow the POSTs are.
    jobs = [small.submit(f"[pending] slot test {n}") for n in range(20)]
    assert [j["status"] for j in jobs[:4]] == ["submitted"] * 4
    assert {j["status"] for j in jobs[4:]} == {"queued"}
    assert all(j["bfl_id"] is None for j in jobs[4:])

    def end_what_bfl_runs() -> bool:
        for task in small_sim.control("GET", "/tasks")["tasks"]:
            if not task["completed_at"]:
                small_sim.complete(task["id"])
        return all(small.job(job["id"])["status"] == "stored" for job in jobs)

    wait_until(end_what_bfl_runs, timeout=90, interval=0.2, message="the 20 jobs stored, as slots free")
    stats = small_sim.stats()
    assert stats["submitted"] == 20 and stats["rejected_429"] == 0
    assert stats["max_active_seen"] <= 4


def test_kontext_max_has_its_own_smaller_pool_within_bfl_max_active(small, small_sim):
    kontext = [small.submit(f"[pending] k {n}", model="flux-kontext-max") for n in range(3)]
    others = [small.submit(f"[pending] o {n}") for n in range(3)]
    # BFL_MAX_ACTIVE=4, of them at most 2 flux-kontext-max: the third kontext-max job waits for its
    # pool; the third other job for the overall limit (the waiting kontext-max job cannot use a slot).
    assert [j["status"] for j in kontext] == ["submitted", "submitted", "queued"]
    assert [j["status"] for j in others] == ["submitted", "submitted", "queued"]
    # Each says why it waits: its model's own limit, and every slot of BFL_MAX_ACTIVE taken.
    assert [j["waiting"] for j in kontext + others] == [None, None, {"reason": "model_limit"}] + [None, None, {
        "reason": "bfl_slots"}]
    assert small.job(kontext[2]["id"])["waiting"] == {"reason": "model_limit"}
    listed = small.get("/v1/jobs", params={"status": "queued"}).json()["jobs"]
    assert {j["id"]: j["waiting"]["reason"] for j in listed} == {kontext[2]["id"]: "model_limit",
                                                                 others[2]["id"]: "bfl_slots"}
    for job in kontext[:2] + others[:2]:
        small_sim.complete(job["bfl_id"])
    for job in (kontext[2], others[2]):
        sent = small.wait_for(job["id"], "submitted", timeout=30)
        assert sent["waiting"] is None
        small_sim.complete(sent["bfl_id"])
    for job in kontext + others:
        assert small.wait_for(job["id"], timeout=60)["status"] == "stored"
    stats = small_sim.stats()
    assert stats["max_active_seen_by_model"]["flux-kontext-max"] <= 2 and stats["max_active_seen"] <= 4


def test_bfl_429_keeps_jobs_queued_until_bfl_has_room(small, small_sim):
    small_sim.settings(max_active=2, task_delay=0.4)
    jobs = [small.submit(f"rate limited {n}") for n in range(6)]
    assert {j["status"] for j in jobs[2:]} <= {"queued", "submitted"}
    assert any(j["status"] == "queued" for j in jobs)
    for job in jobs:
        assert small.wait_for(job["id"], timeout=60)["status"] == "stored"
    stats = small_sim.stats()
    assert stats["rejected_429"] >= 1 and stats["submitted"] == 6 and stats["max_active_seen"] <= 2


def test_bfl_out_of_capacity_keeps_a_submission_queued_until_bfl_has_room(small, small_sim):
    small_sim.settings(out_of_capacity=True)
    before = datetime.now(UTC).replace(microsecond=0)
    job = small.submit("out of capacity")
    assert job["status"] == "queued" and job["bfl_id"] is None
    assert small_sim.stats()["rejected_503"] == 1  # not sent again at once: BFL said it is full
    # It says why, and until when: the pool's pause (BFL's Retry-After, or the backoff) ends.
    assert job["waiting"]["reason"] == "bfl_capacity"
    until = datetime.fromisoformat(job["waiting"]["until"])
    assert before < until <= before + timedelta(seconds=61)
    again = small.job(job["id"])["waiting"]  # read from the pause itself: the same end, to the second
    assert again["reason"] == "bfl_capacity"
    assert abs((datetime.fromisoformat(again["until"]) - until).total_seconds()) <= 1
    small_sim.settings(out_of_capacity=False)
    done = small.wait_for(job["id"], timeout=60)
    assert (done["status"], done["waiting"]) == ("stored", None)


def test_402_fails_queued_jobs_and_refuses_new_ones(small, small_sim):
    holders = [small.submit(f"[pending] holder {n}") for n in range(4)]
    waiting = [small.submit(f"waiting {n}") for n in range(2)]
    assert {j["status"] for j in waiting} == {"queued"}
    small_sim.settings(credits=0)
    for job in holders:
        small_sim.complete(job["bfl_id"])
    for job in waiting:
        done = small.wait_for(job["id"], timeout=30)
        assert (done["status"], done["error"]["code"]) == ("failed", "insufficient_credits")
    for job in holders:
        assert small.wait_for(job["id"])["status"] == "stored"
    refused = small.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "no credits"}})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_credits"


def test_two_workers_sweeping_at_once_poll_each_job_once(small, small_sim):
    jobs = [small.submit(f"[drop] lost {n}") for n in range(4)]
    for job in jobs:
        done = small.wait_for(job["id"], timeout=30)
        assert (done["status"], done["source"]) == ("stored", "poll")
        # Done at BFL within 0.2 s, first polled after the 2 s grace: one poll finds it Ready.
        assert done["attempts"]["polls"] == 1
        assert small_sim.task(job["bfl_id"])["polls"] == 1


def _children(pid: int) -> set[int]:
    """Child processes forked by any thread of ``pid``."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children |= {int(p) for p in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    return children


def test_the_worker_is_one_process_so_its_schedulers_end_with_it(small_stack, tmp_path):
    worker = start_process(["sh", "-c", "exec " + procfile_commands()["worker"]], small_stack.prepare(),
                           log_path=str(tmp_path / "worker.log"))
    try:
        db = redis.Redis.from_url(small_stack.env["REDIS_URL"])
        # The cron thread runs: registered in RQ's registry (RQ's scheduler locks it takes only while it moves
        # retries whose time came: worker/cron.py).
        wait_until(lambda: CronScheduler.all(db), timeout=20, message="the worker's cron thread to start")
        # Threads of the worker: no process of theirs can outlive a worker killed with SIGKILL.
        assert _children(worker.pid) == set()
    finally:
        stop_process(worker)
