"""Redis at its memory limit (maxmemory with noeviction): callbacks get 503 so BFL sends them again,
nothing is half-written, and everything works again once memory is freed, with no restart."""

from __future__ import annotations

import pytest

from conftest import ready_payload
from helpers import serve_png

DB = 4  # no stack of the suite uses it: every key here is this test's


@pytest.fixture()
def full_redis(local_app):
    """A web app in this process, and a switch that puts its Redis at its memory limit."""
    api, connection = local_app(DB)
    policy = connection.config_get("maxmemory-policy")["maxmemory-policy"]
    connection.config_set("maxmemory-policy", "noeviction")

    def limit(full: bool) -> None:
        connection.config_set("maxmemory", int(connection.info("memory")["used_memory"] * 0.5) if full else 0)

    yield api, connection, limit
    limit(False)
    connection.config_set("maxmemory-policy", policy)


def contents(connection) -> dict:
    """Every key's value. Not DUMP's bytes: a large hash's DUMP changes order as reads move its incremental rehash."""
    read = {b"string": connection.get, b"hash": connection.hgetall, b"set": connection.smembers,
            b"list": lambda key: connection.lrange(key, 0, -1),
            b"zset": lambda key: connection.zrange(key, 0, -1, withscores=True),
            b"stream": lambda key: connection.xrange(key)}
    return {key: read[connection.type(key)](key) for key in connection.keys("*")}


def test_a_callback_at_the_memory_limit_is_refused_with_503_and_changes_nothing(full_redis, spy):
    api, connection, limit = full_redis
    job = api.submit("[pending] at the limit")
    payload = ready_payload(job["bfl_id"], serve_png(spy, "at-the-limit"))
    before = contents(connection)

    limit(True)
    refused = api.callback(job["id"], payload)

    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert connection.llen("rq:queue:fluxhook") == 0
    assert contents(connection) == before
    limit(False)
    accepted = api.callback(job["id"], payload)
    assert accepted.status_code == 200 and accepted.json()["outcome"] == "download_queued"
    assert api.job(job["id"])["status"] == "ready"


def test_reads_still_answer_at_the_memory_limit(full_redis):
    api, _, limit = full_redis
    job = api.submit("[pending] read at the limit")
    limit(True)
    assert api.job(job["id"])["status"] == "submitted"
