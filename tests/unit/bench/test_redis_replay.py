"""bench.redis_replay and bench.redis_busy on a real Redis: MONITOR's lines give back each command as its client sent
it, the commands a script ran and those that wait are left out, a client's commands with no other's between are one
round trip, and a replay sends the rest in order, as many a round trip as asked, or in copies at once, each copy in a
database of its own."""

import socket
import time

import pytest
import redis

from bench.redis_busy import CopyFailed, busy
from bench.redis_replay import Capture, commands, replay
from devtools.processes import RedisServer

# Every byte sdscatrepr escapes, and spaces that would split a naive reading.
AWKWARD = b'a "quoted" \\ back\nslash \r\t\x07\x08 \x00\xff end'


@pytest.fixture()
def monitored(tmp_path):
    """A Redis of its own, a client of it, and a function that reads what MONITOR saw until it holds ``until``."""
    server = RedisServer(directory=str(tmp_path)).start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"MONITOR\r\n")
    seen = bytearray()

    def read(until: bytes) -> bytes:
        while until not in seen:
            seen.extend(sock.recv(1 << 16))
        return bytes(seen)

    read(b"+OK\r\n")
    yield redis.Redis.from_url(server.url), read
    sock.close()
    server.stop()


def test_each_command_comes_back_as_its_client_sent_it_and_only_those_a_client_sent(monitored):
    db, read = monitored
    db.hset("record", "field", AWKWARD)
    db.eval("redis.call('SET', KEYS[1], ARGV[1]) return 1", 1, "by-lua", "value")
    db.blpop(["nothing"], timeout=0.01)
    db.ping()
    marked = time.time()
    db.set("after", "the mark")
    db.rpush("list", "x", "y y")

    before, run, _ = commands(read(b'"y y"'), marked, time.time() + 1)

    assert [b"HSET", b"record", b"field", AWKWARD] in before
    assert [b"EVAL", b"redis.call('SET', KEYS[1], ARGV[1]) return 1", b"1", b"by-lua", b"value"] in before
    assert not [c for c in before + run if c[0].upper() in (b"BLPOP", b"PING")]  # waits and pings: not sent
    assert not [c for c in before + run if c[:2] == [b"SET", b"by-lua"]]  # what the script ran: the script runs it
    assert run == [[b"SET", b"after", b"the mark"], [b"RPUSH", b"list", b"x", b"y y"]]


def test_a_replay_sends_the_jobs_commands_as_many_a_round_trip_as_asked():
    captured = Capture(before=[[b"SET", b"made", b"before"]],
                       run=[[b"HSET", b"record", b"field", AWKWARD], [b"INCR", b"counter"], [b"INCR", b"made"],
                            [b"GET", b"made"], [b"EVAL", b"return redis.call('INCR', KEYS[1])", b"1", b"counter"]],
                       jobs=1, trips=[1, 1, 1, 1, 1])

    each, stream = replay(captured, 1), replay(captured, 1000)
    began = time.monotonic()
    apart = replay(captured, 1, gap=0.1)

    assert time.monotonic() - began >= 0.4  # four gaps between five trips
    assert each.reads == apart.reads == 5 and stream.reads == 1
    assert each.errors == stream.errors == apart.errors == 1  # INCR of the text sent before: that part went first
    assert min(each.scripts_us, stream.scripts_us, apart.scripts_us) > 0  # the one script's time


def test_a_round_trip_is_one_clients_commands_with_no_other_clients_between(monitored):
    db, read = monitored
    other = redis.Redis(port=db.connection_pool.connection_kwargs["port"])
    marked = time.time()
    db.set("a", "1")
    other.ping()  # not sent again, yet another client's: the next of db's is a trip of its own
    db.set("a2", "1")
    other.set("b", "1")
    pipe = db.pipeline(transaction=True)  # MULTI and EXEC are not sent; what they wrap is one trip
    pipe.set("c", "1").eval("redis.call('SET', KEYS[1], '1') return 1", 1, "d")  # what the script ran is its trip's
    pipe.execute()
    other.set("end", "1")

    _, run, trips = commands(read(b'"end"'), marked, time.time() + 1)

    assert [args[1] for args in run] == [b"a", b"a2", b"b", b"c", b"redis.call('SET', KEYS[1], '1') return 1", b"end"]
    assert trips == [1, 1, 1, 2, 1]


def test_busy_copies_each_replay_the_run_in_a_database_of_their_own():
    # Each copy's RENAME finds the key its own database got before the run: with no such part, or one database for
    # all, some RENAME finds none. Each GET then reads the key renamed.
    captured = Capture(before=[[b"SET", b"made", AWKWARD]],
                       run=[[b"HSET", b"record", b"field", AWKWARD], [b"RENAME", b"made", b"moved"],
                            [b"GET", b"moved"], [b"INCR", b"counter"]],
                       jobs=2, trips=[2, 2])

    grouped, each = busy(captured, one_a_trip=False, copies=3), busy(captured, one_a_trip=True, copies=3)

    assert grouped.errors == each.errors == 0
    assert (grouped.trips, each.trips) == (1.0, 2.0)  # two trips or four commands, over two jobs
    assert (grouped.reads, each.reads) == (1.0, 2.0)  # what Redis read: the trips as sent
    assert grouped.copies == 3 and 0 < grouped.busy and grouped.jobs_per_second > 0


def test_redis_cpu_is_read_for_a_run_of_many_commands():
    # A few commands' CPU is below what reading it costs (each INFO's, less as measured by its wall time): a run
    # of thousands is what a bench replays, and what its CPU is read for.
    captured = Capture(before=[], run=[[b"INCR", b"counter"]] * 3000, jobs=1, trips=[3000])

    assert replay(captured, 100).cpu_us > 0
    assert busy(captured, one_a_trip=False, copies=2).cpu_us > 0


def test_a_copy_that_fails_says_why_and_stops_the_others():
    # A command no Redis knows does not fail a copy (it is an answer); a connection Redis closes does.
    captured = Capture(before=[], run=[[b"SET", b"a", b"1"], [b"CLIENT", b"KILL", b"SKIPME", b"no"]], jobs=1,
                       trips=[1, 1])

    with pytest.raises(CopyFailed, match=r"copy [01]: .*(closed the connection|reset)"):
        busy(captured, one_a_trip=True, copies=2)
