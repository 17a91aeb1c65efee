"""A worker killed right after BFL took the task it was sending (docs/callbacks.md: a task is never sent to BFL twice
for one job; docs/operating.md: an interrupted job completes within two minutes once a worker runs again). The
Procfile's processes on Redis and the simulator, which answers a submission 30 s after taking its task, so the kill
falls between the two. The job is never sent again: once the send's lease is over, another worker's sweep takes it for
one BFL may have, and BFL's callback to the job's own URL names the task it follows to ``stored``. Another app's job
goes through meanwhile. A module of its own, beside test_lost_sends.py's web process killed mid-send: each waits out a
send's lease."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from conftest import API
from devtools.processes import wait_until
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)


@pytest.fixture(scope="module")
def lost_stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("killed-sender")),
                     DB) as running:
        yield running


def _tasks(sim, prompt: str) -> list[dict]:
    return [t for t in sim.control("GET", "/tasks")["tasks"] if t["prompt"] == prompt]


def test_a_job_whose_worker_died_right_after_bfl_took_its_task_is_finished_once_by_another(lost_stack, sim):
    admin = API(lost_stack.base_url)
    _, app_a = make_key(admin, max_active=1)
    _, app_b = make_key(admin)
    prompt = "[seconds-2] sent by a worker that dies"
    sim.settings(submit_delay=1.0)
    holder = app_a.submit("[seconds-2] holds the key's one slot")
    job = app_a.submit(prompt)
    assert (holder["status"], job["status"]) == ("submitted", "queued")  # a worker's sender sends it
    # BFL takes the task and answers 30 s later: the worker is killed in between, with BFL's answer on its way.
    sim.settings(answer_delay=30.0)
    (task,) = wait_until(lambda: _tasks(sim, prompt), timeout=30, message="BFL to take the worker's send")
    worker = lost_stack.processes.pop("worker")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    sim.settings(answer_delay=0.0)
    killed = time.monotonic()
    lost_stack.start("worker")
    # Another app's job goes through meanwhile.
    other = app_b.submit("[seconds-1] the other app's")
    assert app_b.wait_for(other["id"], timeout=60)["status"] == "stored"

    stored = app_a.wait_for(job["id"], timeout=150)
    assert time.monotonic() - killed < 120  # finished by the new worker within two minutes of the kill
    assert (stored["status"], stored["bfl_id"]) == ("stored", task["id"])
    assert requests.get(stored["image"]["url"], timeout=10).content == sim.image_bytes(task["id"])
    assert len(_tasks(sim, prompt)) == 1  # never sent to BFL twice
