"""A worker killed outright mid-poll (docs/operating.md: an interrupted job completes within two minutes once a worker runs
again): the check's hold lapses and the job is polled again, by the new worker. A stack of its own (fault_helpers),
on a Redis of its own, that may poll BFL at the spy host too."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from conftest import API
from devtools.stack import SIMULATOR_KEY

from .fault_helpers import fault_stack


@pytest.fixture()
def faults_polling_via_spy(simulator, _spies, tmp_path):
    """A FaultStack that may poll BFL at the spy host too (its polling URLs are allowlisted)."""
    sim_host = simulator.url.removeprefix("http://")
    yield from fault_stack(simulator, _spies, tmp_path, API_HOST_ALLOWLIST=f"{sim_host},127.0.0.1:{_spies[0].port}")


def test_worker_killed_mid_poll_polls_again_within_two_minutes(faults_polling_via_spy, _spies, sim):
    stack, spy = faults_polling_via_spy, _spies[0]
    api = API(stack.base_url)
    task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[pending] killed mid-poll"},
                         headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
    polled, released = threading.Event(), threading.Event()

    def poll_answer():
        # The first poll hangs until its worker is dead; every poll answers what BFL says.
        polled.set()
        released.wait(30)
        answer = sim.http.get(task["polling_url"], headers={"x-key": SIMULATOR_KEY}, timeout=10)
        return answer.status_code, {"Content-Type": "application/json"}, answer.content

    path = f"/killed-mid-poll?id={task['id']}"
    spy.route(path, body=poll_answer)
    job = api.track(task["id"], polling_url=spy.url + path).json()  # no callback will come: polled after 2 s
    assert polled.wait(30), "the fallback poll to start"
    stack.kill("worker", signal.SIGKILL)
    released.set()
    sim.complete(task["id"])
    started = time.monotonic()
    stack.start("worker")

    done = api.wait_for(job["id"], timeout=150)
    assert done["status"] == "stored" and done["source"] == "poll", done
    assert time.monotonic() - started < 120  # within two minutes of a worker running again
    assert spy.hits.count(path) >= 2
