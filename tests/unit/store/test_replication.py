"""Acknowledged only once replicas have it (fluxhook/store/replication.py): one WAIT covers every
connection's writes, and a failover between the writes and the WAIT is caught."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from redis.sentinel import Sentinel

from devtools.processes import RedisServer, wait_until
from devtools.relay import Relay
from devtools.replicated_redis import ReplicatedRedis
from fluxhook.core.errors import FailedOver, NotReplicated, ReplicasMissing
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from fluxhook.store.replication import Replication
from fluxhook.store.scripts import refused_by_replica


@pytest.fixture(scope="module")
def pair():
    """A primary and a replica of it, both real redis-servers."""
    primary, replica = RedisServer().start(), RedisServer().start()
    connection = redis.Redis.from_url(replica.url)
    connection.replicaof("127.0.0.1", primary.port)
    wait_until(lambda: connection.info("replication").get("master_link_status") == "up", timeout=15,
               message="the replica to sync")
    yield primary, replica
    primary.stop()
    replica.stop()


def test_one_wait_confirms_writes_made_on_other_connections(pair):
    primary, replica = pair
    writer, confirmer = redis.Redis.from_url(primary.url), redis.Redis.from_url(primary.url)
    replication = Replication(confirmer, replicas=1, wait_ms=2000)
    before = replication.primary()
    writer.set("replication-test", "written elsewhere")

    replication.confirm(before)  # returns: the replica has the marker, so everything before it

    assert redis.Redis.from_url(replica.url).get("replication-test") == b"written elsewhere"


def test_without_enough_replicas_nothing_is_confirmed(pair):
    primary, _ = pair
    replication = Replication(redis.Redis.from_url(primary.url), replicas=2, wait_ms=100)
    started = time.monotonic()
    with pytest.raises(ReplicasMissing, match=r"within 100 ms \(1 of 2, 1 attached\)"):
        replication.confirm(replication.primary())
    assert time.monotonic() - started < 2  # bounded by REDIS_WAIT_MS, not the socket timeout


def test_a_replica_attached_but_behind_is_only_not_replicated(pair):
    """Told apart from a primary without its replicas (the old one of a planned failover looks so)."""
    primary, replica = pair
    replication = Replication(redis.Redis.from_url(primary.url), replicas=1, wait_ms=100)
    os.kill(replica.process.pid, signal.SIGSTOP)  # attached, acknowledging nothing
    try:
        with pytest.raises(NotReplicated, match=r"\(0 of 1, 1 attached\)") as caught:
            replication.confirm(replication.primary())
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    assert not isinstance(caught.value, ReplicasMissing)


def test_a_request_that_began_on_another_primary_is_not_confirmed(pair):
    primary, _ = pair
    replication = Replication(redis.Redis.from_url(primary.url), replicas=1, wait_ms=1000)
    current = replication.primary()
    with pytest.raises(NotReplicated, match="failed over"):
        replication.confirm("f" * 40)  # the id a request saw before a failover
    assert replication.primary() == current  # and the next request starts from the primary seen now


def test_a_promoted_replica_is_another_primary(tmp_path):
    """A replica's promotion changes the replication id that requests compare."""
    old, new = RedisServer().start(), RedisServer().start()
    try:
        promoted = redis.Redis.from_url(new.url)
        promoted.replicaof("127.0.0.1", old.port)
        wait_until(lambda: promoted.info("replication").get("master_link_status") == "up", timeout=15,
                   message="the replica to sync")
        replication = Replication(redis.Redis.from_url(new.url), replicas=0, wait_ms=100)
        seen_before = Replication(redis.Redis.from_url(old.url), replicas=0, wait_ms=100).primary()
        promoted.replicaof("NO", "ONE")
        with pytest.raises(FailedOver, match="failed over"):
            replication.confirm(seen_before)
    finally:
        old.stop()
        new.stop()


def test_a_request_begun_on_a_primary_waits_for_the_replicas_seen_there_whatever_another_saw_since(pair):
    """In a switch the process's requests straddle two primaries: one that began on the old primary still waits for
    the replica its promotion took away (the sentinels are then asked), though another request saw the new one."""
    primary, replica = pair
    second, elsewhere = RedisServer().start(), RedisServer().start()
    address = Relay(primary.port).start()
    try:
        joined = redis.Redis.from_url(second.url)
        joined.replicaof("127.0.0.1", primary.port)
        wait_until(lambda: joined.info("replication").get("master_link_status") == "up", timeout=15,
                   message="the second replica to sync")
        replication = Replication(redis.Redis(port=address.port), replicas=1, wait_ms=1000)
        began = replication.primary()
        replication.confirm(began)  # two replicas online there
        address.retarget(elsewhere.port, close_existing=True)
        with pytest.raises(FailedOver):
            replication.check_primary(began)  # another request reached another primary
        address.retarget(primary.port, close_existing=True)
        second.stop(kill=True)  # the replica a promotion takes away
        # Until the primary has seen it go, it still counts the dead replica's last acknowledgement.
        wait_until(lambda: redis.Redis(port=primary.port).info("replication")["connected_slaves"] == 1, timeout=15,
                   message="the primary to see the killed replica gone")
        started = time.monotonic()
        replication.confirm(began)  # confirmed by the one left only once the missing one was waited for
        assert time.monotonic() - started >= 0.9
    finally:
        address.stop()
        second.stop(kill=True)
        elsewhere.stop()


def test_a_script_refused_by_a_replica_is_told_apart(pair):
    """Redis 6 wraps a script's refused write; that error, and no other, reads as a demoted primary."""
    _, replica = pair
    refused = redis.Redis.from_url(replica.url).register_script("return redis.call('set', KEYS[1], '1')")
    with pytest.raises(redis.ResponseError) as caught:
        refused(keys=["k"])
    assert refused_by_replica(caught.value)
    assert not refused_by_replica(redis.ResponseError("Error running script: @user_script:1: WRONGTYPE"))


def _job_on_the_replica(pair, job_id: str) -> redis.Redis:
    """A client of the replica, once a job written to the primary has reached it."""
    primary, replica = pair
    redis.Redis.from_url(primary.url).hset(KEYS.job(job_id), "status", "queued")
    on_replica = redis.Redis.from_url(replica.url)
    wait_until(lambda: on_replica.exists(KEYS.job(job_id)), message="the job to reach the replica")
    return on_replica


def test_a_script_still_refused_after_reconnecting_is_raised_not_looped_on(pair):
    job_id = "job_01REPLICATESTJOB0000000"
    on_replica = _job_on_the_replica(pair, job_id)
    with pytest.raises(redis.ResponseError) as refused:
        JobStore(on_replica).count(job_id, "polls")  # a script that writes
    assert refused_by_replica(refused.value), refused.value


def test_a_refused_script_leaves_other_threads_connections_alone(pair):
    """Reconnecting after a refused write closes idle connections only: one in use elsewhere keeps its link."""
    job_id = "job_01REPLICATESTJOB0000001"
    on_replica = _job_on_the_replica(pair, job_id)
    in_use = on_replica.connection_pool.get_connection()
    try:
        in_use.send_command("CLIENT", "ID")
        before = in_use.read_response()
        with pytest.raises(redis.ResponseError) as refused:
            JobStore(on_replica).count(job_id, "polls")
        assert refused_by_replica(refused.value), refused.value
        in_use.send_command("CLIENT", "ID")
        assert in_use.read_response() == before
    finally:
        on_replica.connection_pool.release(in_use)


def test_checking_the_primary_waits_for_nothing(pair):
    primary, _ = pair
    replication = Replication(redis.Redis.from_url(primary.url), replicas=5, wait_ms=2000)
    started = time.monotonic()
    replication.check_primary(replication.primary())  # five replicas are missing, and that is not asked
    assert time.monotonic() - started < 1
    with pytest.raises(FailedOver):
        replication.check_primary("e" * 40)


def test_a_planned_failover_with_two_replicas_moves_at_once_and_loses_nothing_confirmed(tmp_path):
    """The old primary's other replica would confirm what it took after the switch, and both then drop it for
    the new primary's data: nothing is confirmed there once the promoted one left, and the connections follow
    the sentinels to the new primary while the old one is still a master (it is demoted some 10 s later)."""
    topology = ReplicatedRedis(replication_delay=0.05, replicas=2, directory=str(tmp_path)).start()
    try:
        sentinels = Sentinel([("127.0.0.1", port) for port in topology.sentinel_ports],
                             sentinel_kwargs={"socket_timeout": 1})
        connection = sentinels.master_for(topology.master, socket_timeout=5)
        replication = Replication(connection, replicas=1, wait_ms=300)
        replication.confirm(replication.primary())  # two replicas online: each confirmation waits for both
        old = topology.node(topology.primary_port())
        confirmed: list[str] = []
        topology.planned_failover()
        deadline = time.monotonic() + 15
        while connection.connection_pool.master_address == ("127.0.0.1", old.port) or not confirmed[-1:]:
            assert time.monotonic() < deadline, "never confirmed on the new primary"
            key = f"planned-{len(confirmed)}-{time.monotonic()}"
            try:
                primary = replication.primary()
                connection.set(key, "1")
                replication.confirm(primary)
                confirmed.append(key)
            except (NotReplicated, redis.RedisError):
                pass
        assert old.client().execute_command("ROLE")[0] == "master"  # moved before the old one was demoted

        topology.wait_demoted()
        new = topology.node(topology.primary_port()).client()
        assert [key for key in confirmed if not new.exists(key)] == []
    finally:
        topology.stop()


def test_with_two_replicas_one_lost_without_a_failover_leaves_writes_confirmed(tmp_path):
    """The second replica is what keeps writes going when one dies: after one WAIT that it misses, and the
    sentinels saying nobody replaces the primary, the one left confirms alone."""
    topology = ReplicatedRedis(replication_delay=0, replicas=2, directory=str(tmp_path)).start()
    try:
        sentinels = Sentinel([("127.0.0.1", port) for port in topology.sentinel_ports],
                             sentinel_kwargs={"socket_timeout": 1})
        replication = Replication(sentinels.master_for(topology.master, socket_timeout=5), replicas=1, wait_ms=1000)
        replication.confirm(replication.primary())
        primary = topology.primary_port()
        lost = next(node for node in topology.nodes if node.port != primary)
        lost.process.kill()
        lost.process.wait(timeout=10)

        replication.confirm(replication.primary())  # the first waits for the lost one, then takes one
        started = time.monotonic()
        replication.confirm(replication.primary())
        assert time.monotonic() - started < 0.9  # no longer waited for (REDIS_WAIT_MS 1000)
        assert topology.primary_port() == primary
    finally:
        topology.stop()
