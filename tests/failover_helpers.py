"""The failover tests' stack and load (tests/e2e/faults/): the Procfile's web and worker behind Redis Sentinel with
REDIS_MIN_REPLICAS=1, and a client that keeps submitting through a Redis failover."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import requests

from conftest import API, service_env
from devtools.processes import free_port
from devtools.replicated_redis import ReplicatedRedis
from devtools.stack import Stack


def failover_stack(redis_server, simulator, spies, tmp_path: Path, replicas: int = 1, **settings: str):
    """A primary, ``replicas`` replicas and three sentinels (devtools/replicated_redis.py), the stack on them with
    ``settings`` besides; yields both, stops both."""
    topology = ReplicatedRedis(directory=str(tmp_path / "redis"), replicas=replicas).start()
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}", REDIS_MIN_REPLICAS="1", **settings))
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
