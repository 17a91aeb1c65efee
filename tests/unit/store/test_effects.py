"""Effects (fluxhook/store/effects.py), on a real Redis. Those done in Redis's step (lua/effects.lua): a day's usage
counters get their life when a count starts in them, not again at every count. Those tallied in the process: a
started tally writes nothing with the transitions it counts, then every count in one round trip, one HINCRBY a field
(a hash of three fields or more: one HMGET and one HSET); it counts only what the transition's step would have (a move,
with its lock); a failed write is kept for the next, and one whose answer was lost counts once; a reading writes the
process's own first; an unstarted one (a command, a test) writes at once."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from devtools.processes import RedisServer
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.store import effects as effects_module
from fluxhook.store.effects import (
    HOURLY_TTL,
    USAGE_TTL,
    AccountJobEnded,
    AddTimelineEntry,
    CountHourly,
    CountMetrics,
    CountUsage,
    Effects,
    Tallies,
)
from fluxhook.store.jobs import JobStore, Lock, Terms
from fluxhook.store.keys import KEYS
from fluxhook.store.usage import UsageStore
from helpers import commands_during

DB = 13
DAY = "2026-11-25"
HOUR = "2026-11-24T16"
# What a connection opened meanwhile says first.
HANDSHAKE = ("SELECT", "HELLO", "CLIENT SETINFO", "AUTH")
STORED = CountMetrics((("fluxhook_downloads", 1), ("fluxhook_download_seconds_sum", 0.25)))


@pytest.fixture()
def connection(redis_server):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", f"/{DB}"))
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture()
def started(connection, monkeypatch):
    # Its own thread's write every few seconds would land, on a busy machine, inside what a test counts: each
    # test writes with flush() when it means to.
    monkeypatch.setattr(effects_module, "FLUSH_INTERVAL", 3600.0)
    tallies = Tallies(connection)
    tallies.start()
    yield tallies
    tallies.stop()


def _submitted(store: JobStore) -> Job:
    now = time.time()
    job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=new_job_id(), created_at=now,
                              updated_at=now))
    return job


def _sent(connection, action) -> list[str]:
    return [c["command"] for c in commands_during(connection, DB, action) if not c["command"].startswith(HANDSHAKE)]


def _metrics(connection) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in connection.hgetall(KEYS.metrics).items()}


def test_a_days_counters_get_their_life_when_a_count_starts_not_at_every_count(connection):
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


def test_a_job_an_account_ran_ending_marks_the_account_with_one_command(connection):
    effects = Effects(connection, KEYS, 3600, lambda tallied: None)
    sent = commands_during(connection, DB, lambda: effects.apply([AccountJobEnded("eu", 1_795_000_000.25),
                                                                  AccountJobEnded("default", 1_795_000_001.5)]))
    assert [c["command"] for c in sent if c["client_type"] == "lua"] == [
        f"HSET {KEYS.balance_ended} eu 1795000000.25", f"HSET {KEYS.balance_ended} default 1795000001.5"]
    assert connection.hgetall(KEYS.balance_ended) == {b"eu": b"1795000000.25", b"default": b"1795000001.5"}


def test_three_counts_or_more_in_one_hash_are_read_once_and_written_once_adding_as_redis_adds(connection):
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


def test_a_started_tally_writes_many_jobs_counts_in_one_round_trip_one_hincrby_a_field(connection, started):
    store = JobStore(connection, tallies=started)
    jobs = [_submitted(store) for _ in range(3)]
    counted = commands_during(connection, DB, lambda: [
        store.transition(job.id, st.FAILED, effects=[STORED, CountHourly(HOUR, (("failed", 1),)),
                                                     CountUsage("2026-11-24", (("flux-2-pro:failed", 1),))])
        for job in jobs])
    # The transitions did the usage counters in their step, and nothing of the tallied counts.
    inside = [c["command"] for c in counted if c["client_type"] == "lua"]
    assert "HINCRBY fh:usage:2026-11-24 flux-2-pro:failed 1" in inside
    assert not [c for c in counted if "fh:metrics" in c["command"] or "fh:hourly:" in c["command"]]
    assert _metrics(connection) == {}

    sent = commands_during(connection, DB, started.flush)
    # One round trip (the process's first use of the script loads it once).
    sent_names = [c["command"].split(" ")[0] for c in sent if c["client_type"] != "lua"]
    # (A new connection's SELECT left out: the pool opens one when MONITOR holds the other.)
    assert [name for name in sent_names if name != "SELECT"] in (["EVALSHA"], ["EVALSHA", "SCRIPT", "EVALSHA"])
    assert [c["command"] for c in sent if c["client_type"] == "lua"][2:] == [
        "HINCRBY fh:metrics fluxhook_downloads 3",
        "HINCRBYFLOAT fh:metrics fluxhook_download_seconds_sum 0.75", f"HINCRBY fh:hourly:{HOUR} failed 3",
        f"EXPIRE fh:hourly:{HOUR} {HOURLY_TTL}"]  # after the batch's mark (HSETNX, EXPIRE); its count started: its life
    # The next batch's count goes on in the same hour's hash, whose life is set already.
    store.transition(_submitted(store).id, st.FAILED, effects=[CountHourly(HOUR, (("failed", 1),))])
    again = [c["command"] for c in commands_during(connection, DB, started.flush) if c["client_type"] == "lua"]
    assert again[3:] == [f"HINCRBY fh:hourly:{HOUR} failed 1"]  # after the last mark's HDEL and this one's
    assert _metrics(connection) == {"fluxhook_downloads": 3, "fluxhook_download_seconds_sum": 0.75}
    assert _sent(connection, started.flush) == []  # nothing left: no round trip at all


def test_only_what_the_step_would_have_done_is_counted(connection):
    tallies = Tallies(connection)
    tallies.start()  # nothing is written before the flush below
    store = JobStore(connection, tallies=tallies)
    job = _submitted(store)
    assert not store.transition(job.id, st.QUEUED, effects=[STORED])  # a move the rules forbid
    lock = Lock(KEYS.download_lock(job.id), "other", 60)
    connection.set(lock.key, "held")
    assert store.transition(job.id, st.READY, terms=Terms(lock=lock), effects=[STORED]).locked is False
    tallies.stop()
    assert _metrics(connection) == {}  # neither was counted, as the step would not have counted them


def test_a_failed_write_keeps_the_counts_for_the_next_and_never_fails_the_work(tmp_path):
    server = RedisServer(directory=str(tmp_path)).start()
    try:
        own = redis.Redis.from_url(server.url, retry=Retry(NoBackoff(), 0))
        tallies = Tallies(own)
        server.stop()
        tallies.add([STORED])  # unstarted: written at once, which fails; the count is kept, nothing raised
        with pytest.raises(RedisConnectionError):
            tallies.flush()
        server.start()  # Redis answers again, on the same port
        tallies.add([STORED])
        assert _metrics(own) == {"fluxhook_downloads": 2, "fluxhook_download_seconds_sum": 0.5}
    finally:
        server.stop()


class _AnswerCutter:
    """A TCP relay to Redis on 127.0.0.1 that, once ``cut`` is set, closes the client's connection as the next answer
    arrives, instead of passing it on: Redis did the write, its answer is lost."""

    def __init__(self, port: int):
        self.target, self.cut = port, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.cut.is_set():
                    self.cut.clear()
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv, and the client sees the close
            except OSError:
                pass
            end.close()


def test_a_write_whose_answer_was_lost_is_written_once(connection, redis_server):
    cutter = _AnswerCutter(redis_server.port)
    relayed = redis.Redis(port=cutter.port, db=DB, retry=Retry(NoBackoff(), 0))
    tallies = Tallies(relayed)
    tallies.start()  # the counts wait for a flush
    tallies.add([CountHourly(HOUR, (("stored", 1),))])
    tallies.flush()  # a first write, so the next one is the write itself, not the loading of its script
    tallies.add([STORED])
    cutter.cut.set()
    with pytest.raises(RedisConnectionError):
        tallies.flush()
    assert _metrics(connection) == {"fluxhook_downloads": 1, "fluxhook_download_seconds_sum": 0.25}  # written
    tallies.add([STORED])
    tallies.stop()  # the one whose answer was lost is tried again first, as it was, then the second
    assert _metrics(connection) == {"fluxhook_downloads": 2, "fluxhook_download_seconds_sum": 0.5}
    cutter.listener.close()


def test_a_reading_writes_the_processs_own_counts_first(connection, started):
    usage = UsageStore(connection, tallies=started)
    started.add([CountHourly(HOUR, (("stored", 1),)), AddTimelineEntry("job_x", "{}")])  # the entry is not counted
    assert usage.hours([HOUR]) == {HOUR: {"stored": 1}}
    assert 0 < connection.ttl(KEYS.hourly(HOUR)) <= HOURLY_TTL


def test_an_unstarted_tally_writes_each_count_at_once(connection):
    tallies = Tallies(connection)
    tallies.add([STORED])
    assert _metrics(connection) == {"fluxhook_downloads": 1, "fluxhook_download_seconds_sum": 0.25}


def test_three_fields_or_more_of_a_hash_are_written_in_one_hmget_and_one_hset_floats_added_as_floats(connection,
                                                                                                     started):
    three = CountMetrics((("fluxhook_downloads", 1), ("fluxhook_download_seconds_sum", 0.1),
                          ("fluxhook_download_seconds_count", 1)))
    started.add([three, three, CountHourly(HOUR, (("stored", 1), ("failed", 1), ("expired", 1)))])
    sent = [c["command"].split(" ")[:2] for c in commands_during(connection, DB, started.flush)
            if c["client_type"] == "lua"]
    assert [name for name, key in sent if key in (KEYS.metrics, KEYS.hourly(HOUR))] == ["HMGET", "HSET", "HMGET", "HSET",
                                                                                          "EXPIRE"]
    started.add([three])
    started.flush()
    assert _metrics(connection) == {"fluxhook_downloads": 3, "fluxhook_download_seconds_count": 3,
                                    "fluxhook_download_seconds_sum": pytest.approx(0.3)}
    assert connection.hgetall(KEYS.hourly(HOUR)) == {b"stored": b"1", b"failed": b"1", b"expired": b"1"}
    assert 0 < connection.ttl(KEYS.hourly(HOUR)) <= HOURLY_TTL
