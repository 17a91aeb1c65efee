"""A Redis primary, its replicas (one by default) and three sentinels on 127.0.0.1, the replication link
slowed by relays.

    topology = ReplicatedRedis(replicas=2).start()
    env = topology.env()          # REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER
    old = topology.primary_port()  # the relay port the sentinels name
    killed_at = topology.kill_primary()
    seconds = topology.wait_for_failover(old, since=killed_at)
    topology.restart_killed()     # back as a replica of the new primary
    old = topology.primary_port()
    asked_at = topology.planned_failover()  # SENTINEL FAILOVER: nothing killed
    seconds = topology.wait_for_failover(old, since=asked_at)
    topology.wait_demoted()       # the old primary a replica again, by the sentinels' doing
    topology.stop()

Each redis-server (AOF on, a directory of its own) sits behind a devtools.relay.Relay and announces the
relay's port, so the sentinels, the primary and the apps know every node by its relay: the replica's
link to the primary runs through the primary's relay and lags ``replication_delay`` behind it. The
sentinels are the same redis-server binary in sentinel mode. Every process logs to a file in
``directory`` (kept after ``stop`` for a look at what happened).
"""

from __future__ import annotations

import collections
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import redis

from .processes import free_port, redis_server_binary, wait_until
from .relay import Relay

# Not 1000: a sentinel reconnects to a new master at most once a second and counts the wait from the
# switch, so with 1000 it sometimes takes a healthy new master for down (more often under load) and,
# the other sentinels' votes from the last failover still standing, fails it over at once.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class Node:
    """One redis-server and the relay in front of it; ``port`` is the relay's, the one everybody uses."""

    name: str
    own_port: int
    relay: Relay
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return self.relay.port

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True,
                           **kwargs)


class ReplicatedRedis:
    """See the module's docstring."""

    def __init__(self, master: str = "fluxhook", replication_delay: float = 0.2, directory: str | None = None,
                 replicas: int = 1, diskless_sync_delay: int | None = None):
        self.master, self.delay, self.replicas = master, replication_delay, replicas
        # repl-diskless-sync-delay, None for the server's default (Redis 7 syncs a replica from scratch over
        # the socket 5 s after it asks, waiting for others to share the transfer; 6.2 writes a file first).
        self.diskless_sync_delay = diskless_sync_delay
        self.directory = Path(directory or tempfile.mkdtemp(prefix="fluxhook-replicated-"))
        self.nodes: list[Node] = []
        self.sentinel_ports: list[int] = []
        self.sentinels: list[subprocess.Popen] = []
        self.killed: Node | None = None
        self.demoted: Node | None = None  # the primary a planned failover replaced, until it is a replica
        self.first_primary: Node | None = None

    # -- starting and stopping

    def start(self) -> "ReplicatedRedis":
        for name in "abcdefgh"[:self.replicas + 1]:
            own = free_port()
            folder = self.directory / name
            folder.mkdir(parents=True, exist_ok=True)
            self.nodes.append(Node(name, own, Relay(own, replication_delay=self.delay).start(), folder))
        primary, *replicas = self.nodes
        self.first_primary = primary
        self._start_node(primary)
        for replica in replicas:
            self._start_node(replica, replica_of=primary.port)
        for replica in replicas:
            self._wait_synced(replica)
        self.sentinel_ports = [free_port() for _ in range(3)]
        for n, port in enumerate(self.sentinel_ports):
            self.sentinels.append(self._start_sentinel(n, port, primary.port))
        # A failover needs the sentinels to know each other (they meet on the primary every 2 s) and the replicas.
        wait_until(self._sentinels_ready, timeout=30, interval=0.2, message="the sentinels to find each other")
        return self

    def stop(self) -> None:
        for process in [*self.sentinels, *(node.process for node in self.nodes if node.process)]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.sentinels, *(node.process for node in self.nodes if node.process)]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for node in self.nodes:
            node.relay.stop()

    def env(self) -> dict[str, str]:
        """What a fluxhook process is given: REDIS_URL's host:port is the first primary's, unused with sentinels."""
        return {"REDIS_URL": f"redis://127.0.0.1:{self.first_primary.port}/0",
                "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
                "REDIS_SENTINEL_MASTER": self.master}

    def _start_node(self, node: Node, replica_of: int | None = None, priority: int = 100) -> None:
        args = [redis_server_binary(), "--port", str(node.own_port), "--bind", "127.0.0.1", "--dir", str(node.directory),
                "--appendonly", "yes", "--save", "", "--protected-mode", "no", "--loglevel", "notice",
                "--replica-announce-ip", "127.0.0.1", "--replica-announce-port", str(node.port),
                "--replica-priority", str(priority)]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        if self.diskless_sync_delay is not None:
            args += ["--repl-diskless-sync-delay", str(self.diskless_sync_delay)]
        with open(node.directory / "redis.log", "ab") as log:
            node.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        direct = redis.Redis(port=node.own_port, socket_connect_timeout=0.5)

        def answers() -> bool:
            if node.process.poll() is not None:
                raise RuntimeError(f"redis-server {node.name} exited; see {node.directory / 'redis.log'}")
            try:
                return direct.ping()
            except redis.ConnectionError:
                return False
            except redis.ResponseError:  # LOADING its AOF: up, not ready yet
                return False

        wait_until(answers, timeout=15, message=f"redis-server {node.name} to answer")
        direct.close()

    def _start_sentinel(self, n: int, port: int, primary_port: int) -> subprocess.Popen:
        folder = self.directory / f"sentinel-{n}"
        folder.mkdir(exist_ok=True)
        conf = folder / "sentinel.conf"  # a sentinel rewrites its file with what it learns: one each
        conf.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", "protected-mode no", f"dir {folder}",
            f"sentinel monitor {self.master} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {self.master} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {self.master} {FAILOVER_TIMEOUT_MS}",
            "sentinel announce-ip 127.0.0.1", "",
        ]))
        with open(folder / "sentinel.log", "ab") as log:
            process = subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"], stdout=log,
                                       stderr=subprocess.STDOUT)
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        wait_until(lambda: _answers(client), timeout=15, message=f"sentinel {n} to answer")
        return process

    # -- what the sentinels say

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=0.5, decode_responses=True)

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            state = self._sentinel(port).sentinel_master(self.master)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < self.replicas:
                return False
        return True

    def primary_port(self, unanimous: bool = False) -> int | None:
        """The current primary's (relay) port as most answering sentinels name it (with ``unanimous``,
        only when all three do)."""
        named = collections.Counter()
        for port in self.sentinel_ports:
            try:
                _, master_port = self._sentinel(port).sentinel_get_master_addr_by_name(self.master)
                named[int(master_port)] += 1
            except (redis.RedisError, TypeError):
                continue  # a sentinel down or that knows no master
        if not named or (unanimous and list(named.values()) != [len(self.sentinel_ports)]):
            return None
        return named.most_common(1)[0][0]

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    # -- failing over

    def kill_primary(self) -> float:
        """SIGKILL the current primary's redis-server; the monotonic time of the kill."""
        node = self.node(self.primary_port())
        node.process.kill()
        killed_at = time.monotonic()
        node.process.wait(timeout=10)
        self.killed = node
        return killed_at

    def planned_failover(self, timeout: float = 15.0) -> float:
        """Ask one sentinel for ``SENTINEL FAILOVER`` (an operator's switch, for an upgrade or a move); the
        monotonic time it accepted.

        Nothing is killed: the sentinel promotes the replica at once, without the others' vote, and the
        old primary goes on as a primary, answering the clients still connected to it, until the
        sentinels see it report that role under the new configuration and turn it into a replica
        (``wait_demoted``). Retried while the sentinel refuses (no candidate replica yet, or a failover
        still under way): an operator would retry too.
        """
        node = self.node(self.primary_port(unanimous=True) or self.primary_port())
        sentinel = self._sentinel(self.sentinel_ports[0])

        def accepted() -> float | None:
            try:
                sentinel.execute_command("SENTINEL FAILOVER", self.master)
            except redis.ResponseError as exc:  # -NOGOODSLAVE, -INPROG
                if str(exc).startswith(("NOGOODSLAVE", "INPROG")):
                    return None
                raise
            return time.monotonic()

        asked_at = wait_until(accepted, timeout=timeout, interval=0.2, message="a sentinel to accept SENTINEL FAILOVER")
        self.demoted = node
        return asked_at

    def wait_demoted(self, timeout: float = 60.0, since: float | None = None,
                     synced: Callable[[], None] | None = None) -> float:
        """Wait until the primary a planned failover replaced is a synced replica of the new primary (then
        call ``synced``) and the sentinels count it as a candidate for the next failover (up to 10 s more:
        their INFO period); the seconds from ``since`` (default: this call) until it had synced. Nothing is
        sent to it: the sentinels reconfigure it themselves, as in production."""
        node, since = self.demoted, since or time.monotonic()

        def replica_of_the_new_primary() -> bool:
            try:
                role = node.client().execute_command("ROLE")
            except redis.RedisError:
                return False
            return role[0] == "slave" and int(role[2]) == self.primary_port() and role[3] == "connected"

        wait_until(replica_of_the_new_primary, timeout=timeout, interval=0.05,
                   message=f"the sentinels to turn {node.name} into a replica")
        seconds = time.monotonic() - since
        if synced:
            synced()
        wait_until(lambda: self._sentinels_see_replica(node), timeout=timeout, interval=0.2,
                   message=f"the sentinels to see {node.name} as a candidate replica")
        self.demoted = None
        return seconds

    def wait_for_failover(self, old: int, timeout: float = 30.0, since: float | None = None) -> float:
        """Wait until the sentinels name a primary other than ``old`` and it answers ROLE as master;
        the seconds since ``since`` (default: this call)."""
        since = since or time.monotonic()

        def promoted() -> bool:
            # All three: one that has not heard of the switch yet would start a failover of its own.
            port = self.primary_port(unanimous=True)
            if port in (None, old):
                return False
            try:
                return self.node(port).client().execute_command("ROLE")[0] == "master"
            except redis.RedisError:
                return False

        wait_until(promoted, timeout=timeout, interval=0.05, message="the sentinels to promote the replica")
        return time.monotonic() - since

    def wait_attached(self, since: float, timeout: float = 60.0) -> float:
        """Wait until the primary the sentinels all name has at least one replica online (what a ``WAIT 1``
        needs); the seconds since ``since``."""

        def attached() -> bool:
            port = self.primary_port(unanimous=True)
            if port is None:
                return False
            try:
                info = self.node(port).client().info("replication")
            except redis.RedisError:
                return False
            return info.get("role") == "master" and any(
                isinstance(value, dict) and value.get("state") == "online"
                for key, value in info.items() if key.startswith("slave"))

        wait_until(attached, timeout=timeout, interval=0.05, message="the new primary to have a replica online")
        return time.monotonic() - since

    def restart_killed(self, timeout: float = 60.0) -> float:
        """Start the killed node again as a replica of the current primary (its own directory and AOF: it
        never comes back as an empty primary); the seconds until it has synced. Then wait until the
        sentinels count it as a candidate for the next failover (up to 10 s more: their INFO period)."""
        node, started = self.killed, time.monotonic()
        # Priority 0 until synced: a sentinel takes a replica that never synced for a candidate, and
        # would promote its stale AOF if the primary failed meanwhile (seen right after a switch).
        self._start_node(node, replica_of=self.primary_port(), priority=0)
        self._wait_synced(node, timeout)
        synced = time.monotonic() - started
        redis.Redis(port=node.own_port, socket_timeout=2).config_set("replica-priority", 100)
        wait_until(lambda: self._sentinels_see_replica(node), timeout=timeout, interval=0.2,
                   message=f"the sentinels to see {node.name} as a candidate replica")
        self.killed = None
        return synced

    def _wait_synced(self, node: Node, timeout: float = 60.0) -> None:
        direct = redis.Redis(port=node.own_port, socket_timeout=2, decode_responses=True)
        wait_until(lambda: direct.info("replication").get("master_link_status") == "up", timeout=timeout,
                   interval=0.1, message=f"{node.name} to sync with its primary")
        direct.close()

    def _sentinels_see_replica(self, node: Node) -> bool:
        for port in self.sentinel_ports:
            replicas = self._sentinel(port).sentinel_slaves(self.master)
            if not any(int(r["port"]) == node.port and r["flags"] == "slave" and r["slave-priority"] > 0
                       and r["master-link-status"] == "ok" for r in replicas):
                return False
        return True

    def replication_lag(self) -> int:
        """Bytes the primary has written that its replica has not acknowledged yet (0 when none is attached)."""
        info = self.node(self.primary_port()).client().info("replication")
        offsets = [info[key]["offset"] for key in info if key.startswith("slave") and isinstance(info[key], dict)]
        return info["master_repl_offset"] - min(offsets) if offsets else 0


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
