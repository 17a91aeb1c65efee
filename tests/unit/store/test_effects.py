"""Effects done in Redis's step (fluxhook/store/effects.py, lua/effects.lua), on a real Redis: a day's usage counters
get their life when a count starts in them, not again at every count."""

from __future__ import annotations

import pytest
import redis

from fluxhook.store.effects import USAGE_TTL, AccountJobEnded, CountUsage, Effects
from fluxhook.store.keys import KEYS
from helpers import commands_during

DB = 14
DAY = "2026-11-25"


def test_a_days_counters_get_their_life_when_a_count_starts_not_at_every_count(redis_server):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", f"/{DB}"))
    connection.flushdb()
    effects = Effects(connection, KEYS, 3600, lambda tallied: None)
    key = KEYS.usage(DAY)

    def expires(*increments) -> list[str]:
        sent = commands_during(connection, DB, lambda: effects.apply([CountUsage(DAY, increments)]))
        return [c["command"] for c in sent if c["command"].startswith("EXPIRE")]

    assert expires(("flux-2-pro:jobs", 1), ("spent", 3_000_000)) == [f"EXPIRE {key} {USAGE_TTL}"]
    assert USAGE_TTL - 5 < connection.ttl(key) <= USAGE_TTL
    connection.expire(key, 100)
    assert expires(("flux-2-pro:jobs", 1), ("spent", 3_000_000)) == []  # counted on: its life stands
    assert connection.ttl(key) <= 100
    assert expires(("flux-2-pro:stored", 1)) == [f"EXPIRE {key} {USAGE_TTL}"]  # a count started in it
    assert connection.hgetall(key) == {b"flux-2-pro:jobs": b"2", b"spent": b"6000000", b"flux-2-pro:stored": b"1"}
    connection.flushdb()


def test_a_job_an_account_ran_ending_marks_the_account_with_one_command(redis_server):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", f"/{DB}"))
    connection.flushdb()
    effects = Effects(connection, KEYS, 3600, lambda tallied: None)
    sent = commands_during(connection, DB, lambda: effects.apply([AccountJobEnded("eu", 1_795_000_000.25),
                                                                  AccountJobEnded("default", 1_795_000_001.5)]))
    assert [c["command"] for c in sent if c["client_type"] == "lua"] == [
        f"HSET {KEYS.balance_ended} eu 1795000000.25", f"HSET {KEYS.balance_ended} default 1795000001.5"]
    assert connection.hgetall(KEYS.balance_ended) == {b"eu": b"1795000000.25", b"default": b"1795000001.5"}
    connection.flushdb()


def test_three_counts_or_more_in_one_hash_are_read_once_and_written_once_adding_as_redis_adds(redis_server):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", f"/{DB}"))
    connection.flushdb()
    effects = Effects(connection, KEYS, 3600, lambda tallied: None)
    key = KEYS.usage(DAY)
    submission = (("flux-2-pro:jobs", 1), ("flux-2-pro:credits", 3_000_000), ("spent", 3_000_000),
                  ("spent#default", 3_000_000))

    def sent(*increments) -> list[str]:
        commands = commands_during(connection, DB, lambda: effects.apply([CountUsage(DAY, increments)]))
        return [c["command"].split(" ")[0] for c in commands if c["command"].split(" ")[1:2] == [key]]

    # A submission's four: one HMGET and one HSET, not a HINCRBY each; the hash's life set as its counts start.
    assert sent(*submission) == ["HMGET", "HSET", "EXPIRE"]
    connection.hset(key, "spent", str(2**53 - 1_000_000))  # a whole number a double no longer holds once added to
    assert sent(*submission) == ["HMGET", "HINCRBY", "HINCRBY", "HINCRBY", "HINCRBY"]  # Redis adds it exactly
    assert sent(*submission) == ["HMGET", "HINCRBY", "HINCRBY", "HINCRBY", "HINCRBY"]
    assert connection.hgetall(key) == {b"flux-2-pro:jobs": b"3", b"flux-2-pro:credits": b"9000000",
                                       b"spent": str(2**53 - 1_000_000 + 6_000_000).encode(),
                                       b"spent#default": b"9000000"}
    connection.hset(key, "spent", "3.5")  # no whole number: refused as HINCRBY refuses it
    with pytest.raises(redis.ResponseError, match="not an integer"):
        effects.apply([CountUsage(DAY, submission)])
    connection.flushdb()
