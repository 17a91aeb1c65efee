"""The failover topology of ``make chaos-failover`` (devtools.replicated_redis) and its relay: a write WAITed
for is on the replica and survives the primary's SIGKILL, the sentinels promote the replica, the killed
node comes back as a replica; a planned failover (SENTINEL FAILOVER) keeps waited writes and the sentinels
demote the old primary themselves; and only the replication link is slowed."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.sentinel import Sentinel

from devtools.processes import RedisServer, free_port, wait_until
from devtools.relay import Relay
from devtools.replicated_redis import ReplicatedRedis

PING = b"*1\r\n$4\r\nPING\r\n"
# What a replica sends on connecting to its primary, after its PING.
REPLCONF = b"*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n6380\r\n"


@pytest.fixture
def topology():
    replicated = ReplicatedRedis(replication_delay=0.2).start()
    yield replicated
    replicated.stop()


@pytest.fixture
def target():
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_waited_write_survives_the_primary_killed_and_the_killed_node_returns_as_a_replica(topology):
    old = topology.primary_port()
    primary, replica = topology.node(old), next(node for node in topology.nodes if node.port != old)
    assert topology.env()["REDIS_URL"] == f"redis://127.0.0.1:{old}/0"
    primary.client().set("fh:acknowledged", "1")
    started = time.monotonic()
    assert primary.client().wait(1, 2000) == 1
    waited = time.monotonic() - started
    print(f"WAIT 1 2000 through the relay: {waited * 1000:.0f} ms")
    # The relay's 200 ms; under a second even on a loaded machine, where a relay that held the link longer (or a
    # replica acknowledging only at its once-a-second REPLCONF ACK) would not be.
    assert 0.15 <= waited < 1.0
    assert replica.client().get("fh:acknowledged") == "1"

    killed_at = topology.kill_primary()
    seconds = topology.wait_for_failover(old, timeout=15, since=killed_at)
    print(f"failover: {seconds:.2f} s from the kill to a new master")
    assert seconds < 10
    assert topology.primary_port() == replica.port
    assert replica.client().execute_command("ROLE")[0] == "master"
    assert replica.client().get("fh:acknowledged") == "1"

    topology.restart_killed()
    role = primary.client().execute_command("ROLE")
    assert (role[0], int(role[2])) == ("slave", replica.port)
    sentinel = Sentinel([("127.0.0.1", port) for port in topology.sentinel_ports], socket_timeout=1)
    master = sentinel.master_for(topology.master, socket_timeout=1, decode_responses=True)
    master.set("fh:after", "2")
    assert master.connection_pool.get_master_address() == ("127.0.0.1", replica.port)
    wait_until(lambda: primary.client().get("fh:after") == "2", timeout=5, message="the old primary to catch up")
    assert primary.client().get("fh:acknowledged") == "1"
    with pytest.raises(redis.ReadOnlyError):
        primary.client().set("fh:written-to-a-replica", "3")


def test_a_planned_failover_keeps_waited_writes_and_the_old_primary_turns_replica_by_itself(topology):
    old = topology.primary_port()
    primary, replica = topology.node(old), next(node for node in topology.nodes if node.port != old)
    connected = primary.client()  # a client that stays on the old primary, as pooled connections do
    connected.set("fh:acknowledged", "1")
    assert connected.wait(1, 500) == 1

    asked_at = topology.planned_failover()
    seconds = topology.wait_for_failover(old, timeout=15, since=asked_at)
    print(f"planned failover: {seconds:.2f} s from SENTINEL FAILOVER to a new master")
    assert primary.process.poll() is None  # nothing killed
    assert replica.client().execute_command("ROLE")[0] == "master"
    assert replica.client().get("fh:acknowledged") == "1"
    # Until the sentinels demote it, the old primary still takes writes, and no replica confirms them.
    if connected.execute_command("ROLE")[0] == "master":
        connected.set("fh:unconfirmed", "2")
        assert connected.wait(1, 200) == 0

    synced = topology.wait_demoted(since=asked_at)
    print(f"planned failover: {synced:.2f} s from SENTINEL FAILOVER to the old primary a synced replica")
    role = primary.client().execute_command("ROLE")
    assert (role[0], int(role[2])) == ("slave", replica.port)
    assert primary.client().get("fh:acknowledged") == "1"
    assert primary.client().get("fh:unconfirmed") is None  # the new primary's data replaced it
    with pytest.raises(redis.ReadOnlyError):
        primary.client().set("fh:written-to-a-replica", "3")


def _answered_in(sock: socket.socket, command: bytes) -> float:
    started = time.monotonic()
    sock.sendall(command)
    assert sock.recv(100).startswith((b"+PONG", b"+OK"))
    return time.monotonic() - started


def test_the_relay_delays_a_replication_link_and_nothing_else(target):
    # Undelayed is under half the delay: a bound a loaded host's scheduling does not reach, and the delay's own cannot.
    delay = 1.0
    relay = Relay(target.port, replication_delay=delay).start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as replication, \
                socket.create_connection(("127.0.0.1", relay.port), timeout=5) as client:
            assert _answered_in(replication, PING) < delay / 2  # a replica's first PING: not known as one yet
            delayed = _answered_in(replication, REPLCONF)
            plain = max(_answered_in(client, PING) for _ in range(5))
        print(f"through the relay: replication {delayed * 1000:.0f} ms, client {plain * 1000:.1f} ms")
        assert delayed >= delay * 0.9
        assert plain < delay / 2
    finally:
        relay.stop()


def test_a_relay_whose_target_is_down_accepts_then_closes(target):
    relay = Relay(free_port()).start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=2) as sock:
            assert sock.recv(100) == b""  # closed by the relay, not refused, not left hanging
        relay.retarget(target.port)
        with socket.create_connection(("127.0.0.1", relay.port), timeout=2) as sock:
            assert _answered_in(sock, PING) < 0.5  # answered, not held: the relay adds no delay of its own
            relay.retarget(free_port(), close_existing=True)
            assert sock.recv(100) == b""  # a managed Redis's address moved: open connections are cut
    finally:
        relay.stop()
