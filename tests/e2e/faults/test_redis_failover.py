"""A Redis failover under load (SPEC §13): the Procfile's web and worker on a primary, a replica and three
sentinels (devtools/replicated_redis.py), REDIS_MIN_REPLICAS=1. The primary is SIGKILLed while jobs are
submitted with Idempotency-Keys; every acknowledged job is found and stored afterwards, nothing answers
500, and the processes write to the new primary without a restart. The long run: make chaos-failover."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import API, service_env
from devtools.processes import free_port, wait_until
from devtools.replicated_redis import ReplicatedRedis
from devtools.stack import Stack

# The sentinels' own failover time (down-after 1 s, then an election) is what writes wait for; then
# the killed node's return as a replica, which REDIS_MIN_REPLICAS=1 needs; 5 s beyond both is allowed.
SLACK = 5.0


@pytest.fixture()
def failover_stack(redis_server, simulator, _spies, tmp_path):
    topology = ReplicatedRedis(directory=str(tmp_path / "redis")).start()
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}", REDIS_MIN_REPLICAS="1"))
    env.update(topology.env())
    running = Stack(env=env, var_dir=Path(tmp_path))
    try:
        running.start()
        yield running, topology
    finally:
        running.stop()
        topology.stop()


class Submitter(threading.Thread):
    """Submits jobs one after another, each retried with its own Idempotency-Key until it is acknowledged."""

    def __init__(self, api: API):
        super().__init__(daemon=True)
        self.api, self.stop = api, threading.Event()
        self.acknowledged: list[tuple[float, str]] = []  # (monotonic time of the 202, job id)
        self.statuses: list[int] = []

    def run(self) -> None:
        while not self.stop.is_set():
            key, body = f"failover-{uuid.uuid4()}", {"model": "flux-2-pro", "input": {"prompt": "a fox"}}
            while not self.stop.is_set():
                try:
                    response = self.api.post("/v1/jobs", json=body, headers={"Idempotency-Key": key}, timeout=15)
                except requests.RequestException:
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 202:
                    self.acknowledged.append((time.monotonic(), response.json()["id"]))
                    break
                self.stop.wait(0.1)  # Retry-After is 1 s; a tenth keeps the measure of unavailability fine


def test_acknowledged_jobs_survive_a_failover_and_writes_resume(failover_stack):
    stack, topology = failover_stack
    api = API(stack.base_url)
    submitter = Submitter(api)
    submitter.start()
    wait_until(lambda: len(submitter.acknowledged) >= 5, timeout=30, message="jobs acknowledged before the kill")

    old = topology.primary_port()
    killed_at = topology.kill_primary()
    failover = topology.wait_for_failover(old, since=killed_at)
    rejoined = topology.restart_killed()
    resumed = wait_until(lambda: next((t for t, _ in submitter.acknowledged if t > killed_at), None),
                         timeout=failover + rejoined + 30, message="a write acknowledged after the failover")
    wait_until(lambda: sum(t > killed_at for t, _ in submitter.acknowledged) >= 5, timeout=30,
               message="jobs acknowledged after the failover")
    submitter.stop.set()
    submitter.join(timeout=20)

    assert resumed - killed_at <= failover + rejoined + SLACK, (resumed - killed_at, failover, rejoined)
    assert 500 not in submitter.statuses and set(submitter.statuses) <= {202, 503}, sorted(set(submitter.statuses))
    for _, job_id in submitter.acknowledged:
        found = api.get(f"/v1/jobs/{job_id}")
        assert found.status_code == 200, f"acknowledged job {job_id} lost: {found.status_code}"
        assert api.wait_for(job_id, timeout=60)["status"] == "stored"
