"""Fixtures for the unit tests: the slot tests' Redis database (3) and a job store on it, used by the tests of
slots, model pools and the fair share."""

from __future__ import annotations

import pytest
import redis

from fluxhook.store.jobs import JobStore


@pytest.fixture()
def connection(redis_server):
    # Database 3: the session's web and worker processes use database 0.
    connection = redis.Redis.from_url(redis_server.url.replace("/0", "/3"))
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture()
def store(connection) -> JobStore:
    return JobStore(connection)
