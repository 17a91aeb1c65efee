"""A Redis failover under load: the Procfile's web and worker on a primary, a replica and three
sentinels (devtools/replicated_redis.py), REDIS_MIN_REPLICAS=1. The primary is SIGKILLed while jobs are
submitted with Idempotency-Keys; every acknowledged job is found and stored afterwards, nothing answers
500, and the processes write to the new primary without a restart; a wake-up the old primary took with it costs a
worker's waiter at most its guard (WAKE_GUARD_SECONDS), so the jobs are all stored soon after. The long run: make
chaos-failover."""

from __future__ import annotations

import pytest

from conftest import API
from devtools.processes import wait_until
from failover_helpers import Submitter, failover_stack

# The sentinels' own failover time (down-after 1 s, then an election) is what writes wait for; then
# the killed node's return as a replica, which REDIS_MIN_REPLICAS=1 needs; 5 s beyond both is allowed.
SLACK = 5.0
# The worker's wake-up guard here, and how long the jobs still in flight when the submitter stops take beyond it (a
# submission, a task and a download each, with the simulator's answers).
GUARD = 3
STORED_WITHIN = GUARD + 20.0


@pytest.fixture()
def failover(redis_server, simulator, _spies, tmp_path):
    yield from failover_stack(redis_server, simulator, _spies, tmp_path, WAKE_GUARD_SECONDS=str(GUARD))


def test_acknowledged_jobs_survive_a_failover_and_writes_resume(failover):
    stack, topology = failover
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
    # None waits on a wake-up the old primary lost for longer than the guard (before it, a waiter's 120 s rest).
    wait_until(lambda: all(api.get(f"/v1/jobs/{job_id}").json()["status"] == "stored"
                           for _, job_id in submitter.acknowledged),
               timeout=STORED_WITHIN, message="every acknowledged job stored within the guard and its work's time")
