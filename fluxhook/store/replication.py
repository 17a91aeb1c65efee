"""Acknowledging only what Redis's replicas have: one ``WAIT`` per request (``REDIS_MIN_REPLICAS``).

``WAIT`` confirms the writes made on its own connection, and a request's writes go over whichever pooled connections were
free. So the request writes one marker last and waits on that connection: replication is one ordered stream, so a replica
that has the marker has every write the primary took before it. That holds only on the primary that took those writes:
after a failover a ``WAIT`` on the new primary says nothing of the old one's. A promoted replica changes the replication
id, so a request remembers the id from before its first write and the confirmation compares it.

A planned failover (``SENTINEL FAILOVER``) is not seen so: the old primary keeps its id and takes its connections' writes
until the sentinels make it a replica, some seconds after the switch, and it then drops them for the new primary's data,
as do its other replicas, which the sentinels move to the new primary. So the ``WAIT`` asks for every replica online (at
least ``replicas``, at most ``wait_ms``): the promoted one never confirms what the old primary took after its promotion,
nor does one promoted without a write its fellow had. When a replica online is missing from the confirmation, the
sentinels are asked whether they are failing the primary over (from the request on) or most name another one: then
nothing is acknowledged (``FailedOver``), the replica gone is still waited for until the process is on the new primary
(the one left would confirm what is then dropped), and the connections follow the sentinels there at once, rather than
when the old one is demoted. Otherwise a replica only slow, or lost without a failover, is not waited on beyond the one
``WAIT`` (``ReplicasMissing`` if fewer than ``replicas`` are online at all). What stays open: a write confirmed by one
replica while the other lags more than ``wait_ms``, before a failover that then promotes the laggard.
"""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError
from redis.sentinel import SentinelConnectionPool

from fluxhook.core.errors import FailedOver, NotReplicated, ReplicasMissing
from fluxhook.store.keys import KEYS, Keys

# The primaries whose replicas online are remembered: the current one and those a switch's requests may still
# have begun on.
KEPT_PRIMARIES = 4
RETRY_HINT = "retry it (with the same Idempotency-Key to get the first answer if it had one)"


class Replication:
    """How many replicas must have a write before it is acknowledged, and the wait for them."""

    def __init__(self, connection: Redis, replicas: int, wait_ms: int, keys: Keys = KEYS):
        self._connection = connection
        self._keys = keys
        self.replicas = replicas
        # Whether acknowledgements wait for replicas at all: fixed with the setting, so a request without them reads a
        # flag and runs nothing of this class.
        self.required = replicas > 0
        self.wait_ms = wait_ms
        # The primary's replication id as this process last saw it (asked on first use, then kept fresh by every
        # confirmation, so a request starts without a round trip) and, under Sentinel, the address the connections reached
        # then: asked again once they reach another, lest the first request after a failover start from the old id and be refused.
        self._primary: str | None = None
        self._primary_at: tuple | None = None
        # Replicas online at the last confirmation on each primary (by replication id): the next WAIT there asks for
        # all of them. Kept per primary, not for the last one seen: in a switch the threads' requests straddle both,
        # and a request begun on the old primary must still wait for the replica its promotion took away.
        self._online: dict[str, int] = {}

    def primary(self) -> str:
        """The replication id of the primary as last seen: read before a request writes anything."""
        primary = self._primary
        if primary is None or self._reached() != self._primary_at:
            primary = self._connection.info("replication")["master_replid"]
            self._seen(primary)
        return primary

    def _seen(self, primary: str) -> None:
        self._primary, self._primary_at = primary, self._reached()

    def _reached(self) -> tuple | None:
        """Under Sentinel, the master's address the connections were last made to; None otherwise."""
        pool = self._connection.connection_pool
        return pool.master_address if isinstance(pool, SentinelConnectionPool) else None

    def check_primary(self, primary: str) -> None:
        """Raise ``FailedOver`` if the primary is another one than ``primary`` now (what a request read
        after a failover may miss what it wrote before)."""
        self._seen(self._connection.info("replication")["master_replid"])
        if self._primary != primary:
            raise FailedOver("Redis failed over while this request was handled, so its answer may be wrong; "
                             + RETRY_HINT)

    def check_settled(self, primary: str) -> None:
        """``check_primary``, and ``FailedOver`` too while the sentinels are replacing the primary or most name another:
        in a planned switch the old primary keeps its id and answers for some seconds, from what it is about to drop."""
        self.check_primary(primary)
        if self._sentinels_moving():
            raise FailedOver("Redis's sentinels are replacing the primary this request read from, so its answer may "
                             "be wrong; " + RETRY_HINT)

    def confirm(self, primary: str) -> None:
        """Return once every replica online (at least ``replicas``) has every write the primary ``primary`` took so
        far, or ``replicas`` have and none left; raise ``NotReplicated`` if they do not within ``wait_ms``
        (``ReplicasMissing`` if fewer than ``replicas`` are online), ``FailedOver`` if the primary is another one
        now or the sentinels are replacing it."""
        wanted = max(self.replicas, self._online.get(primary, 0))
        pipe = self._connection.pipeline(transaction=False)
        pipe.incr(self._keys.replication_marker)
        pipe.wait(wanted, self.wait_ms)
        pipe.info("replication")
        _, acknowledged, info = pipe.execute()
        # What this connection reached, not what the process saw last: other threads' requests move that meanwhile.
        took = info["master_replid"]
        self._seen(took)
        online = sum(1 for key, value in info.items()
                     if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")
        if took != primary:
            self._online_on(took, online)
            raise FailedOver("Redis failed over while this request was handled, so what it wrote may be lost; "
                             + RETRY_HINT)
        if acknowledged < max(wanted, online) and self._sentinels_moving():
            # The replica gone is still waited for: the one left would confirm what the old primary then drops.
            raise FailedOver("Redis's sentinels are replacing the primary that took this request's writes, so "
                             "what it wrote may be lost; " + RETRY_HINT)
        self._online_on(primary, online)
        if acknowledged >= wanted:
            return
        if acknowledged < self.replicas:
            error = ReplicasMissing if online < self.replicas else NotReplicated
            raise error(f"Redis's replicas did not confirm this request's writes within {self.wait_ms} ms "
                        f"({acknowledged} of {self.replicas}, {online} attached); " + RETRY_HINT)

    def _online_on(self, primary: str, online: int) -> None:
        if primary not in self._online and len(self._online) >= KEPT_PRIMARIES:
            self._online.pop(next(iter(self._online)))  # the earliest seen: long replaced
        self._online[primary] = online

    def _sentinels_moving(self) -> bool:
        """Under Sentinel: whether a sentinel is failing the master over or most name another one than this process's
        connections reach (one sentinel behind, or astray, is outvoted). If so the connections follow the sentinels: the
        idle ones are closed, those in use when released, so the next command asks where the master is. Without Sentinel
        (a managed Redis behind one address): False."""
        pool = self._connection.connection_pool
        if not isinstance(pool, SentinelConnectionPool):
            return False
        reached, failing_over, answered, elsewhere = pool.master_address, False, 0, 0
        for sentinel in pool.sentinel_manager.sentinels:
            try:
                state = sentinel.sentinel_master(pool.service_name)
            except RedisError:
                continue  # a sentinel down: the others answer
            flags = state["flags"] if isinstance(state["flags"], set) else set(state["flags"].split(","))
            failing_over = failing_over or "failover_in_progress" in flags
            answered += 1
            elsewhere += (state["ip"], state["port"]) != reached
        moving = failing_over or elsewhere * 2 > answered
        if moving:
            try:
                pool.get_master_address()  # drops the connections if the master is elsewhere now
            except RedisError:
                pass  # no sentinel names a master yet: the next command asks again
        return moving
