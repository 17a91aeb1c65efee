"""A client that keeps submitting through a Redis failover, for the failover tests (tests/e2e/faults/)."""

from __future__ import annotations

import threading
import time
import uuid

import requests

from conftest import API


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
