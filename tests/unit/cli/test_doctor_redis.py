"""``fluxhook doctor``'s Redis lines under Sentinel, against a real primary, replica and three sentinels
(devtools/replicated_redis.py): the primary it reaches is named, not REDIS_URL's placeholder host; what an
acknowledgement waits for; and what REDIS_MIN_REPLICAS=0 risks there."""

from __future__ import annotations

import pytest

from devtools.replicated_redis import ReplicatedRedis
from fluxhook.cli.operator_commands import replicas_checks
from fluxhook.core.config import Config
from fluxhook.lifecycle import readiness
from fluxhook.lifecycle.readiness import FAIL, OK, WARN
from fluxhook.services import build_services

# REDIS_URL under Sentinel gives the password, database and TLS; its host is never contacted.
PLACEHOLDER = "redis://unused-host:1/0"
SETTINGS = {"SECRET_KEY": "s" * 32, "API_TOKENS": "t" * 16, "BFL_API_KEY": "key"}


@pytest.fixture(scope="module")
def topology():
    replicated = ReplicatedRedis(replication_delay=0).start()
    yield replicated
    replicated.stop()


def _services(topology, **overrides):
    env = {**SETTINGS, **topology.env(), "REDIS_URL": PLACEHOLDER, **overrides}
    return build_services(Config.from_env(env))


def test_the_redis_line_names_the_primary_the_sentinels_send_it_to(topology, tmp_path):
    svc = _services(topology, STORAGE_URL=f"file://{tmp_path}")
    redis_check = next(check for check in readiness.check(svc) if check.name == "redis")
    sentinels = ",".join(f"127.0.0.1:{port}" for port in topology.sentinel_ports)
    assert redis_check.state == OK, redis_check
    assert redis_check.detail.startswith(f"primary 127.0.0.1:{topology.primary_port()} (Sentinel master fluxhook "
                                         f"at {sentinels}): PING ")
    assert "unused-host" not in redis_check.detail


def test_with_the_default_an_acknowledgement_waits_for_the_replica_and_one_replica_is_no_spare(topology):
    svc = _services(topology)
    assert svc.config.redis_min_replicas == 1
    checks = [(c.state, c.detail) for c in replicas_checks(svc) if "repl-diskless-sync-delay" not in c.detail]
    assert checks[0] == (OK, "acknowledgements wait for 1 replica (REDIS_MIN_REPLICAS=1, at most REDIS_WAIT_MS=500); "
                             "the primary has 1 replica connected")
    assert checks[1][0] == WARN and checks[1][1].startswith("the primary has 1 replica connected, no spare: writes "
                                                            "stop while one is away")
    assert len(checks) == 2


def test_two_replicas_with_no_resync_delay_are_all_ok():
    topology = ReplicatedRedis(replication_delay=0, replicas=2, diskless_sync_delay=0).start()
    try:
        checks = replicas_checks(_services(topology))
    finally:
        topology.stop()
    assert [(c.state, c.detail) for c in checks] == [
        (OK, "acknowledgements wait for 1 replica (REDIS_MIN_REPLICAS=1, at most REDIS_WAIT_MS=500); the primary "
             "has 2 replicas connected")]


def test_a_resync_delay_on_the_primary_is_named(topology):
    svc = _services(topology)
    svc.redis.config_set("repl-diskless-sync", "yes")
    svc.redis.config_set("repl-diskless-sync-delay", 5)
    try:
        [delay] = [c for c in replicas_checks(svc) if "repl-diskless-sync-delay" in c.detail]
    finally:
        svc.redis.config_set("repl-diskless-sync-delay", 0)
    assert delay.state == WARN and delay.detail.startswith("repl-diskless-sync-delay is 5 s on the primary")


def test_zero_under_sentinel_says_what_it_risks(topology):
    [check] = replicas_checks(_services(topology, REDIS_MIN_REPLICAS="0"))
    assert check.state == WARN
    assert check.detail.startswith("REDIS_MIN_REPLICAS=0 under Sentinel (the primary has 1 replica connected): a "
                                   "failover, even a planned SENTINEL FAILOVER, loses what the old primary "
                                   "acknowledged before a replica had it")


def test_more_replicas_wanted_than_the_primary_has_fails(topology):
    [check] = replicas_checks(_services(topology, REDIS_MIN_REPLICAS="2"))
    assert check.state == FAIL and check.detail.startswith("REDIS_MIN_REPLICAS=2 but the primary has 1 replica "
                                                           "connected: submissions, callbacks and key changes "
                                                           "answer 503")


def test_without_sentinel_or_replicas_there_is_no_replicas_line(redis_server):
    svc = build_services(Config.from_env({**SETTINGS, "REDIS_URL": redis_server.url}))
    assert replicas_checks(svc) == []
