"""Faults fluxhook must survive: a Redis restart, a misbehaving BFL, a web process killed between recording a
callback and queueing the download. Each test runs its own Redis (AOF on) and the Procfile's processes
(fault_helpers). Killed and stopped workers: test_killed_mid_download.py, test_killed_mid_poll.py,
test_graceful_stop.py, test_worker_pool.py."""

from __future__ import annotations

import time

import pytest
import requests

from conftest import API, ready_payload
from devtools.processes import RedisServer, wait_until
from fluxhook.core.config import Config
from fluxhook.core.outcomes import DownloadOutcome
from fluxhook.core.signing import Sealer
from fluxhook.lifecycle.steps import schedule
from fluxhook.store.keys import KEYS

from .fault_helpers import download_outcomes, stored_exactly_once

# -- 3. Redis restarts -------------------------------------------------------------------------

def test_redis_restart_loses_nothing_and_refuses_callbacks_while_down(faults, sim):
    api = API(faults.base_url)
    before = [api.submit(f"acknowledged {n}") for n in range(20)]
    pending = api.submit("[pending] completes while Redis is down")
    for job in before:
        api.wait_for(job["id"])
    server: RedisServer = faults.redis_server  # type: ignore[attr-defined]
    server.stop(kill=True)  # no clean shutdown: only what the AOF holds survives

    sim.complete(pending["bfl_id"])
    sample = sim.result(pending["bfl_id"])["result"]["sample"]
    refused = api.callback(pending["id"], ready_payload(pending["bfl_id"], sample))
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert requests.get(faults.base_url + "/readyz", timeout=10).status_code == 503

    # Same port and directory; the fixture stops this one.
    faults.redis_server = RedisServer(port=server.port, directory=server.directory).start()
    wait_until(lambda: requests.get(faults.base_url + "/readyz", timeout=10).status_code == 200, timeout=90,
               message="web and worker to reconnect")
    # BFL retries the refused callback: now it is taken, and the worker (reconnected) stores it.
    assert api.callback(pending["id"], ready_payload(pending["bfl_id"], sample)).status_code == 200
    assert api.wait_for(pending["id"], timeout=30)["status"] == "stored"
    for job in before:
        assert api.job(job["id"])["status"] == "stored"
    after = api.submit("after the restart")
    assert api.wait_for(after["id"])["status"] == "stored"


# -- 4. BFL misbehaving --------------------------------------------------------------------------

def test_truncated_then_whole_body_is_retried_and_stored(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_truncate=True)
    job = api.submit("truncated body")
    # The first attempt over, not begun (its count is taken as it starts): a truncated body turned down, and only
    # then whole bodies again.
    wait_until(lambda: DownloadOutcome.RETRY in download_outcomes(faults, job["id"]), timeout=20, message="a truncated download")
    assert api.job(job["id"])["status"] == "ready"
    sim.settings(delivery_truncate=False)
    done = api.wait_for(job["id"], timeout=30)
    assert done["status"] == "stored" and done["attempts"]["downloads"] >= 2
    stored_exactly_once(api, sim, [job], faults)


def test_a_slow_delivery_host_still_ends_stored(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=4.0)
    job = api.submit("slow delivery")
    done = api.wait_for(job["id"], timeout=30)
    assert (done["status"], done["attempts"]["downloads"]) == ("stored", 1)


def test_ready_before_pending_and_duplicates_out_of_order_end_stored_once(faults, sim):
    api = API(faults.base_url)
    job = api.submit("[pending] out of order")
    sim.complete(job["bfl_id"])
    sample = sim.result(job["bfl_id"])["result"]["sample"]
    for payload in (ready_payload(job["bfl_id"], sample), {"id": job["bfl_id"], "status": "Pending"},
                    ready_payload(job["bfl_id"], sample), {"id": job["bfl_id"], "status": "Error"}):
        assert api.callback(job["id"], payload).status_code == 200
    done = api.wait_for(job["id"])
    assert (done["status"], done["bfl_status"], done["attempts"]["downloads"]) == ("stored", "Ready", 1)
    stored_exactly_once(api, sim, [job], faults)


# -- 5. the web process killed between recording a callback and queueing the download --------------

@pytest.mark.parametrize("lock", ["none", "stale"])
def test_a_ready_job_without_a_queued_download_is_repaired_by_the_sweep(faults, sim, lock):
    api = API(faults.base_url)
    job = api.submit("[pending] the web process dies")
    sim.complete(job["bfl_id"])
    sample = sim.result(job["bfl_id"])["result"]["sample"]
    db = faults.db()
    # What a web process leaves if it dies after recording Ready and before the download is queued:
    # the job ready and due for its check a minute later (here: now), no RQ task, maybe a lock; BFL's
    # delivery link kept sealed, as every process keeps it.
    sealed = Sealer(Config.from_env(faults.env).secret_keys).seal_text(sample)
    db.hset(KEYS.job(job['id']), mapping={"status": "ready", "bfl_status": "Ready", "source": "webhook",
                                            "result_url": sealed})
    db.zrem(KEYS.status("submitted"), job["id"])
    db.zadd(KEYS.status("ready"), {job["id"]: 0})
    db.zadd(KEYS.due, {job["id"]: time.time()})
    if lock == "stale":
        db.set(KEYS.download_lock(job['id']), "0a0a0a0a", ex=900)  # names a task never queued
    done = api.wait_for(job["id"], timeout=30)
    assert (done["status"], done["attempts"]["polls"]) == ("stored", 0)
    stored_exactly_once(api, sim, [job], faults)


def test_ready_jobs_are_rechecked_soon_after(faults, sim):
    api = API(faults.base_url)
    job = api.submit("[pending] recheck scheduled")
    sim.settings(delivery_delay=3.0)
    sim.complete(job["bfl_id"])
    wait_until(lambda: api.job(job["id"])["status"] == "ready", timeout=10, message="ready")
    due = faults.db().zscore(KEYS.due, job["id"])
    assert due is not None and 0 < due - time.time() <= schedule.READY_FIRST_CHECK
    sim.settings(delivery_delay=0)
    api.wait_for(job["id"])
    assert faults.db().zscore(KEYS.due, job["id"]) is None
