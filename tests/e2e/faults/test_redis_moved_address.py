"""A managed Redis that fails over behind one address: the Procfile's web and worker on
REDIS_URL alone, a relay standing for the provider's endpoint. The replica is promoted and the old
primary made its replica; the address moves to the new primary while connections opened before stay
on the old one, which now answers READONLY. Writes go on at the new primary, nothing answers 500."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from conftest import API, service_env
from devtools.processes import RedisServer, free_port, wait_until
from devtools.relay import Relay
from devtools.stack import Stack
from failover_helpers import Submitter
from fluxhook.core.holds import SUBMIT_LEASE


@pytest.fixture()
def moving_address(redis_server, simulator, _spies, tmp_path):
    first, second = RedisServer().start(), RedisServer().start()
    redis.Redis(port=second.port).replicaof("127.0.0.1", first.port)
    wait_until(lambda: redis.Redis(port=second.port).info("replication").get("master_link_status") == "up",
               timeout=20, message="the replica to sync")
    endpoint = Relay(first.port).start()
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}"))
    env["REDIS_URL"] = f"redis://127.0.0.1:{endpoint.port}/0"
    running = Stack(env=env, var_dir=Path(tmp_path))
    try:
        running.start()
        yield running, endpoint, first, second
    finally:
        running.stop()
        endpoint.stop()
        first.stop()
        second.stop()


def test_writes_follow_the_address_to_the_new_primary(moving_address):
    stack, endpoint, first, second = moving_address
    api = API(stack.base_url)
    submitter = Submitter(api)
    submitter.start()
    wait_until(lambda: len(submitter.acknowledged) >= 5, timeout=30, message="jobs acknowledged before the move")
    assert endpoint.open_links > 0  # the processes' pooled connections, which stay on the old primary

    # As a managed Redis moves its primary (FAILOVER: writes paused until the replica has them all, then the
    # roles swap); two REPLICAOFs would leave a moment with two primaries, whose writes to the old are lost.
    redis.Redis(port=first.port).execute_command("FAILOVER", "TO", "127.0.0.1", second.port, "TIMEOUT", 5000)
    wait_until(lambda: redis.Redis(port=second.port).info("replication")["role"] == "master"
               and redis.Redis(port=first.port).info("replication")["role"] == "slave", timeout=10,
               message="the roles to swap")
    endpoint.retarget(second.port, close_existing=False)
    moved_at = time.monotonic()
    resumed = wait_until(lambda: next((t for t, _ in submitter.acknowledged if t > moved_at), None), timeout=30,
                         message="a write acknowledged at the new primary")
    wait_until(lambda: sum(t > moved_at for t, _ in submitter.acknowledged) >= 5, timeout=30,
               message="jobs acknowledged after the move")
    submitter.stop.set()
    submitter.join(timeout=20)

    assert resumed - moved_at < 5, resumed - moved_at
    assert 500 not in submitter.statuses, sorted(set(submitter.statuses))
    # A request that made its job, then failed on the old primary, is answered on its retry with that job
    # (Idempotency-Key). The job is made with its place in line in one step: a worker sends it from there, or,
    # if it took its slot, the sweep's repair does once the slot's lease (SUBMIT_LEASE) lapses.
    for _, job_id in submitter.acknowledged:
        assert api.wait_for(job_id, timeout=SUBMIT_LEASE + 60)["status"] == "stored", job_id
    assert redis.Redis(port=second.port).info("replication")["role"] == "master"
