"""A worker killed outright mid-download (docs/operating.md: an interrupted job completes within two minutes once a worker
runs again): RQ finds the killed task abandoned once its heartbeat lapses and runs it again; every job is stored
once. A stack of its own (fault_helpers), on a Redis of its own."""

from __future__ import annotations

import signal
import time

from conftest import API
from devtools.processes import wait_until

from .fault_helpers import stored_exactly_once


def test_worker_killed_mid_download_recovers_every_job(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=10.0)  # room for a loaded host between a download starting and the kill
    jobs = [api.submit(f"killed mid-download {n}") for n in range(4)]
    wait_until(lambda: any(api.job(j["id"])["attempts"]["downloads"] for j in jobs), timeout=20,
               message="a download to start")
    faults.kill("worker", signal.SIGKILL)  # the worker, its work horse and its schedulers
    sim.settings(delivery_delay=0)
    assert any(api.job(j["id"])["status"] == "ready" for j in jobs)
    started = time.monotonic()
    faults.start("worker")
    # RQ declares the killed task abandoned 30 to 45 s after its last heartbeat and retries it.
    for job in jobs:
        assert api.wait_for(job["id"], timeout=150)["status"] == "stored"
    assert time.monotonic() - started < 120  # within two minutes of a worker running again
    # The download that was cut off was made again.
    assert any(api.job(j["id"])["attempts"]["downloads"] >= 2 for j in jobs)
    stored_exactly_once(api, sim, jobs, faults)
