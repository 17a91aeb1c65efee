"""An Idempotency-Key's hold (receiver/idempotency.py) outlasts the longest a first request can take, and a key
Redis would not free when its request failed (a primary turned replica) is freed once Redis takes writes again, on a
real primary and replica."""

from __future__ import annotations

import redis

from devtools.processes import RedisServer, wait_until
from fluxhook.core.bfl_limits import CALL_BOUND
from fluxhook.store.idempotency import HELD, IN_USE, Hold, IdempotencyStore
from receiver import idempotency_keys
from receiver.idempotency import KEY_HOLD_LEASE, LateReleases
from receiver.prefer import MAX_WAIT


def test_the_lease_outlasts_the_longest_a_first_request_can_take():
    assert KEY_HOLD_LEASE > CALL_BOUND + MAX_WAIT


def test_a_key_a_replica_would_not_free_is_freed_once_it_takes_writes():
    primary, replica = RedisServer().start(), RedisServer().start()
    try:
        on_replica = redis.Redis.from_url(replica.url)
        on_replica.replicaof("127.0.0.1", primary.port)
        wait_until(lambda: on_replica.info("replication").get("master_link_status") == "up", timeout=15,
                   message="the replica to sync")
        use = idempotency_keys.key_use("token-a", "key-1", "POST", "/v1/jobs", b"{}")
        first = IdempotencyStore(redis.Redis.from_url(primary.url)).begin(use, KEY_HOLD_LEASE)
        assert first.state == HELD
        store = IdempotencyStore(on_replica)  # the request's store once its primary turned replica
        wait_until(lambda: on_replica.exists(store.keys.idempotency(use.scope, use.key)), message="the hold")
        releases = LateReleases(interval=0.05, tries=200)

        assert releases.add(store, Hold(use, first.ticket, first.until_ms))
        on_replica.replicaof("NO", "ONE")  # promoted: it takes writes

        wait_until(lambda: store.begin(use, KEY_HOLD_LEASE).state != IN_USE, timeout=10,
                   message="the key to be freed for the client's retry")
    finally:
        primary.stop()
        replica.stop()
