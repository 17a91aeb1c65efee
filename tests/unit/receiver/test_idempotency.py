"""An Idempotency-Key's hold (receiver/idempotency.py) outlasts the longest a first request can take, and a key
Redis would not free when its request failed (a primary turned replica), or whose release the replicas did not
confirm before a failover, is freed once Redis takes writes again, on a real primary and replica."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devtools.processes import RedisServer, free_port, wait_until
from devtools.relay import Relay
from fluxhook.core.bfl_limits import CALL_BOUND
from fluxhook.core.errors import NotReplicated
from fluxhook.store.idempotency import HELD, IN_USE, Hold, IdempotencyStore
from fluxhook.store.replication import Replication
from receiver import idempotency_keys
from receiver.idempotency import KEY_HOLD_LEASE, LateReleases, release
from receiver.request_input import MAX_WAIT

# The late releases' thread outlives a test (it tries until Redis confirms): its clients back off without jitter, so
# it draws nothing from ``random`` while a later test's Hypothesis strategies do.
NO_JITTER = Retry(NoBackoff(), 1)


def test_the_lease_outlasts_the_longest_a_first_request_can_take():
    assert KEY_HOLD_LEASE > CALL_BOUND + MAX_WAIT


def test_a_key_a_replica_would_not_free_is_freed_once_it_takes_writes():
    primary, replica = RedisServer().start(), RedisServer().start()
    try:
        on_replica = redis.Redis.from_url(replica.url, retry=NO_JITTER)
        on_replica.replicaof("127.0.0.1", primary.port)
        wait_until(lambda: on_replica.info("replication").get("master_link_status") == "up", timeout=15,
                   message="the replica to sync")
        use = idempotency_keys.key_use("token-a", "key-1", "POST", "/v1/jobs", b"{}")
        first = IdempotencyStore(redis.Redis.from_url(primary.url)).begin(use, KEY_HOLD_LEASE)
        assert first.state == HELD
        store = IdempotencyStore(on_replica)  # the request's store once its primary turned replica
        wait_until(lambda: on_replica.exists(store.keys.idempotency(use.scope, use.key)), message="the hold")
        releases = LateReleases(interval=0.05, tries=200)

        assert releases.add(store, Replication(on_replica, 0, 100), Hold(use, first.ticket, first.until_ms))
        on_replica.replicaof("NO", "ONE")  # promoted: it takes writes

        wait_until(lambda: store.begin(use, KEY_HOLD_LEASE).state != IN_USE, timeout=10,
                   message="the key to be freed for the client's retry")
    finally:
        replica.stop(kill=True)  # a throwaway: 6.2's AOF rewrite after a sync holds up a SIGTERM for 10 s
        primary.stop()


def test_a_release_the_replicas_did_not_confirm_is_made_again_on_the_primary_that_replaces_it():
    """The chaos run's case: a request refused 503 in a failover freed its key on the old primary only, and the
    client's retries were answered 409 on the new one for the hold's lease. One tenant's key, another's beside it."""
    primary, replica = RedisServer().start(), RedisServer().start()
    link = Relay(primary.port).start()  # the replication link, to be cut
    address = Relay(primary.port).start()  # where the app's connections go: the sentinels' role, moved by hand
    try:
        on_replica = redis.Redis.from_url(replica.url)
        on_replica.replicaof("127.0.0.1", link.port)
        wait_until(lambda: on_replica.info("replication").get("master_link_status") == "up", timeout=15,
                   message="the replica to sync")
        app = redis.Redis(port=address.port, retry=NO_JITTER)
        keys, replication = IdempotencyStore(app), Replication(app, replicas=1, wait_ms=100)
        use = idempotency_keys.key_use("token-a", "key-1", "POST", "/v1/jobs", b"{}")
        other = idempotency_keys.key_use("token-b", "key-1", "POST", "/v1/jobs", b"{}")
        first = keys.begin(use, KEY_HOLD_LEASE)
        assert first.state == HELD and keys.begin(other, KEY_HOLD_LEASE).state == HELD
        replication.confirm(replication.primary())  # both holds are on the replica
        link.retarget(free_port(), close_existing=True)  # from here the release reaches the old primary only
        held = Hold(use, first.ticket, first.until_ms)
        with pytest.raises(NotReplicated):
            release(keys, replication, held)
        releases = LateReleases(interval=0.05, tries=200)
        assert releases.add(keys, replication, held)
        # The failover: the old primary and what only it took are gone, the replica is promoted and reached.
        primary.stop(kill=True)
        on_replica.replicaof("NO", "ONE")
        address.retarget(replica.port, close_existing=True)

        wait_until(lambda: keys.begin(use, KEY_HOLD_LEASE).state == HELD, timeout=10,
                   message="the key freed on the new primary for the client's retry")
        assert keys.begin(other, KEY_HOLD_LEASE).state == IN_USE  # the other tenant's hold, untouched
    finally:
        link.stop()
        address.stop()
        replica.stop(kill=True)
        primary.stop()
