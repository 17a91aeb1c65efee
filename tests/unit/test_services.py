"""The one place that builds Redis clients (fluxhook/services.py connect_redis): REDIS_URL alone, or
Sentinel with REDIS_URL's credentials, database and TLS. Following a failover: tests/e2e/faults/."""

from __future__ import annotations

from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from fluxhook.core.config import Config
from fluxhook.services import connect_redis

from .core.test_config import env


def test_without_sentinels_the_url_is_the_address():
    client = connect_redis(Config.from_env(env(REDIS_URL="redis://:secret@10.1.2.3:6380/2")))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("10.1.2.3", 6380, 2, "secret")


def test_with_sentinels_the_master_is_asked_for_and_the_url_gives_the_rest():
    client = connect_redis(Config.from_env(env(
        REDIS_URL="rediss://app:secret@unused-host:1/4", REDIS_TLS_VERIFY="0",
        REDIS_SENTINELS="127.0.0.1:26379,127.0.0.1:26380", REDIS_SENTINEL_MASTER="fluxhook")))
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "fluxhook"
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "secret", 4)
    assert "host" not in kwargs and "port" not in kwargs  # the sentinels say where the master is
    assert pool.connection_class is SentinelManagedSSLConnection and kwargs["ssl_cert_reqs"] == "none"
