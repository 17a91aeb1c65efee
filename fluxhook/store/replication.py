"""Acknowledging only what Redis's replicas have: one ``WAIT`` per request (``REDIS_MIN_REPLICAS``).

``WAIT`` confirms the writes made on its own connection, and a request's writes go over whichever
pooled connections were free. So the request writes one marker last and waits on that connection:
replication is one ordered stream, so a replica that has the marker has every write the primary
took before it. That holds only on the primary that took those writes; after a failover a ``WAIT``
on the new primary says nothing of writes the old one took. The primary is known by its replication
id, which a promoted replica changes, so a request remembers the id from before its first write and
the confirmation compares it.

A planned failover (``SENTINEL FAILOVER``) is not seen so: the old primary keeps its id, and takes the
writes of the connections it has, until the sentinels make it a replica, some seconds after the switch,
and it then drops them for the new primary's data. Its replica left it at the switch, so a confirmation
that falls short also says whether the required replicas were attached at all (``ReplicasMissing``).
"""

from __future__ import annotations

from redis import Redis

from fluxhook.core.errors import FailedOver, NotReplicated, ReplicasMissing
from fluxhook.store.keys import KEYS, Keys


class Replication:
    """How many replicas must have a write before it is acknowledged, and the wait for them."""

    def __init__(self, connection: Redis, replicas: int, wait_ms: int, keys: Keys = KEYS):
        self._connection = connection
        self._keys = keys
        self.replicas = replicas
        self.wait_ms = wait_ms
        # The primary's replication id as this process last saw it: asked on first use, then kept fresh
        # by every confirmation, so a request starts without a round trip.
        self._primary: str | None = None

    @property
    def required(self) -> bool:
        """Whether acknowledgements wait for replicas at all."""
        return self.replicas > 0

    def primary(self) -> str:
        """The replication id of the primary as last seen: read before a request writes anything."""
        if self._primary is None:
            self._primary = self._connection.info("replication")["master_replid"]
        return self._primary

    def check_primary(self, primary: str) -> None:
        """Raise ``FailedOver`` if the primary is another one than ``primary`` now (what a request read
        after a failover may miss what it wrote before)."""
        self._primary = self._connection.info("replication")["master_replid"]
        if self._primary != primary:
            raise FailedOver("Redis failed over while this request was handled, so its answer may be wrong; "
                             "retry it (with the same Idempotency-Key to get the first answer if it had one)")

    def confirm(self, primary: str) -> None:
        """Return once ``replicas`` replicas have every write the primary ``primary`` took so far; raise
        ``NotReplicated`` if they do not within ``wait_ms`` (``ReplicasMissing`` if fewer than ``replicas`` are
        attached), ``FailedOver`` if the primary is another one now."""
        pipe = self._connection.pipeline(transaction=False)
        pipe.incr(self._keys.replication_marker)
        pipe.wait(self.replicas, self.wait_ms)
        pipe.info("replication")
        _, acknowledged, info = pipe.execute()
        self._primary = info["master_replid"]
        if self._primary != primary:
            raise FailedOver("Redis failed over while this request was handled, so what it wrote may be lost; "
                                "retry it (with the same Idempotency-Key to get the first answer if it had one)")
        if acknowledged < self.replicas:
            attached = int(info.get("connected_slaves", 0))
            error = ReplicasMissing if attached < self.replicas else NotReplicated
            raise error(f"Redis's replicas did not confirm this request's writes within {self.wait_ms} ms "
                        f"({acknowledged} of {self.replicas}, {attached} attached); retry it (with the same "
                        "Idempotency-Key to get the first answer if it had one)")
