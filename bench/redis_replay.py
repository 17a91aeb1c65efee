"""Redis's own work for a stored job, apart from the round trips that carry it: a run's commands replayed in order.

A run of the Redis-cost bench's stack (``redis_stack.TreeStack``: the same simulator, jobs and processes as
``redis_cost.measure``) is captured with ``MONITOR`` from the moment Redis starts: every command a client sent, each
with its arguments as they were. The commands are then sent again, in the order Redis ran them, to a Redis of their own
(the suite's server, AOF on as deployed): the stack's start and idle seconds first, unmeasured, then the jobs' part,
measured with ``INFO`` as the bench measures a run, the idle loops' commands over the window included. Commands a
script ran are not sent (the script runs them again); nor are the ones that wait or only watch (``BLPOP``, ``BLMOVE``,
``MULTI``/``EXEC``, ``WATCH``, ``CLIENT``, ``INFO``...), nor the bench's own (``HSTRLEN``). So what a blocking pop
took (a task from RQ's queue, a wake-up from a one-item list) is not taken: those lists only grow in a replay, and the
pops themselves, about a microsecond each, and their round trips are missing from both figures. The stream runs the
run's minute in a fraction of a second, so a key with a second to live outlives it there; and the replay's Redis holds
no retention (``--retained``).

Sent one to a round trip, each command costs Redis the wake-up of an idle server; sent all in one stream, the same
commands cost Redis its own work alone (the scripts, the commands, the AOF), as on a busy server whose every wake-up
finds work. The difference, over the commands, is what one round trip costs Redis on this machine. Sent one to a round
trip a few milliseconds apart, as the bench's light load spaces them, Redis idles between them, and the scripts' own
time (their ``usec``, not the round trips') shows what an idle server's cold caches add to each.
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from devtools.processes import RedisServer

from .redis_stack import TreeStack, post_jobs, start_redis_server, wait_thumbnails

# Sent again: everything a client sent that changes or reads data, scripts loaded included.
NOT_SENT = frozenset({
    "MONITOR", "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "MULTI", "EXEC", "DISCARD", "WATCH",
    "UNWATCH", "CLIENT", "INFO", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "PING", "CONFIG",
    "SLOWLOG", "WAIT", "HELLO", "SELECT", "XREAD", "XREADGROUP", "HSTRLEN", "QUIT", "RESET", "ROLE", "COMMAND"})
# A line of MONITOR: "+<unix time> [<db> <client address, or lua>] "<arg>" "<arg>" ...".
_LINE = re.compile(rb'^\+(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$')
# sdscatrepr's escapes, the ones it writes as a letter.
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8}
SETTLE_SECONDS = 1.0
# The stream's commands go in pipelines this long: Redis's own work, with a round trip it cannot notice.
STREAM = 1000


@dataclass(frozen=True)
class Capture:
    """A run's commands as Redis ran them: ``before`` the jobs (the stack's start and idle), and theirs (``run``)."""

    before: list[list[bytes]]
    run: list[list[bytes]]
    jobs: int
    # The run's round trips as its clients sent them, each its count of commands in ``run``, in order: the commands
    # one client sent with no other client's between (a pipeline, a MULTI, a script's call).
    trips: list[int]


@dataclass(frozen=True)
class Replayed:
    """Redis's CPU per stored job (µs) and its socket reads per job, for the commands sent ``per_trip`` a round trip
    (``gap`` seconds apart); the scripts' own time per job (µs, their ``usec``: running them, not the round trips);
    the errors Redis answered (those the run had: a script's call before its load, answered ``NOSCRIPT``)."""

    per_trip: int
    gap: float
    cpu_us: float
    reads: float
    scripts_us: float
    errors: int


def arguments(quoted: bytes) -> list[bytes]:
    """A MONITOR line's arguments, each as the client sent it: ``"a" "b\\x00"`` -> [b"a", b"b\\x00"]."""
    found, i = [], 0
    while i < len(quoted):
        if quoted[i] != ord('"'):
            i += 1
            continue
        i += 1
        value = bytearray()
        while quoted[i] != ord('"'):
            if quoted[i] == ord("\\"):
                escaped = quoted[i + 1]
                if escaped == ord("x"):
                    value.append(int(quoted[i + 2:i + 4], 16))
                    i += 4
                    continue
                value.append(_ESCAPES.get(escaped, escaped))
                i += 2
                continue
            value.append(quoted[i])
            i += 1
        found.append(bytes(value))
        i += 1
    return found


def commands(monitored: bytes, posted_at: float,
             ended_at: float) -> tuple[list[list[bytes]], list[list[bytes]], list[int]]:
    """The clients' commands in ``monitored`` (MONITOR's output) that are sent again: those before ``posted_at``, and
    those from it to ``ended_at``, with the latter's round trips (``Capture.trips``)."""
    before: list[list[bytes]] = []
    run: list[list[bytes]] = []
    trips: list[int] = []
    sender, fresh = b"", True
    for line in monitored.split(b"\r\n"):
        match = _LINE.match(line)
        if not match or match[2] == b"lua":
            continue
        fresh = fresh or match[2] != sender
        sender = match[2]
        args = arguments(match[3])
        if not args or args[0].upper().decode(errors="replace") in NOT_SENT:
            continue
        at = float(match[1])
        if at < posted_at:
            before.append(args)
        elif at <= ended_at:
            run.append(args)
            if fresh:
                trips.append(0)
                fresh = False
            trips[-1] += 1
    return before, run, trips


def capture(tree: Path, jobs: int, accounts: int, submit_delay: float, task_delay: float) -> Capture:
    """A run of ``jobs`` jobs on ``tree``'s stack under MONITOR, from Redis's start to the last thumbnail."""
    stack = TreeStack(tree, accounts, submit_delay, task_delay).start_redis()
    monitored = bytearray()
    done, watching = threading.Event(), threading.Event()

    def monitor() -> None:
        # A socket of its own, not redis-py's Monitor, which joins a command's arguments with spaces.
        with socket.create_connection(("127.0.0.1", stack.redis_server.port), timeout=0.5) as sock:
            sock.sendall(b"MONITOR\r\n")
            while b"+OK\r\n" not in monitored:  # MONITOR sees every command from its answer on
                monitored.extend(sock.recv(1 << 16))
            watching.set()
            while not done.is_set():
                try:
                    received = sock.recv(1 << 20)
                except TimeoutError:
                    continue
                if not received:
                    return
                monitored.extend(received)

    reader = threading.Thread(target=monitor, daemon=True)
    try:
        reader.start()
        if not watching.wait(10):
            raise RuntimeError("MONITOR did not answer")
        stack.start()
        time.sleep(3.0)
        posted_at = time.time()
        ids, _ = post_jobs(stack, jobs)
        wait_thumbnails(stack, ids, 900)
        db = stack.redis()
        while any(not db.hstrlen(f"fh:job:{job}", "thumbnail_key") for job in ids):
            time.sleep(0.1)
        time.sleep(SETTLE_SECONDS)  # the last tasks' ends, after their thumbnails, as the bench's run has them
        ended_at = time.time()
        time.sleep(0.5)
    finally:
        done.set()
        stack.stop()
        reader.join(5)
    before, run, trips = commands(bytes(monitored), posted_at, ended_at)
    return Capture(before, run, len(ids), trips)


def replay(captured: Capture, per_trip: int, gap: float = 0.0) -> Replayed:
    """``captured`` sent again in order to a Redis of its own, ``per_trip`` commands a round trip for the jobs' part,
    each trip ``gap`` seconds after the last one's answer (Redis idle between them, as at the bench's load)."""
    with tempfile.TemporaryDirectory(prefix="fluxhook-replay-") as directory:
        server = start_redis_server(RedisServer(directory=directory))
        try:
            db = redis.Redis.from_url(server.url)
            send(db, captured.before, STREAM)
            first = db.info("all")
            errors = send(db, captured.run, per_trip, gap)
            last = db.info("all")
        finally:
            server.stop()
    reads = last["total_reads_processed"] - first["total_reads_processed"] - 1  # the last INFO's
    jobs = max(captured.jobs, 1)
    return Replayed(per_trip, gap, cpu_seconds(first, last) * 1e6 / jobs, reads / jobs,
                    (_scripts_usec(last) - _scripts_usec(first)) / jobs, errors)


def cpu_seconds(first: dict, last: dict) -> float:
    """Redis's CPU between two ``INFO all`` readings, less what the bench's ``INFO`` took of it."""
    cpu = last["used_cpu_user"] + last["used_cpu_sys"] - first["used_cpu_user"] - first["used_cpu_sys"]
    return cpu - (last["cmdstat_info"]["usec"] - first["cmdstat_info"]["usec"]) / 1e6


def _scripts_usec(info: dict) -> int:
    """Redis's time in scripts (``EVALSHA``'s and ``EVAL``'s ``usec``, what they run included): most of a job's own
    work. Not every command's: Redis 7 counts a command a script runs under its own name as well."""
    return sum(info.get(name, {}).get("usec", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def send(db: redis.Redis, sent: list[list[bytes]], per_trip: int, gap: float = 0.0) -> int:
    """Send ``sent`` in order, ``per_trip`` commands a pipeline, each ``gap`` seconds after the last one's answer; how
    many Redis answered with an error."""
    errors = 0
    for first in range(0, len(sent), per_trip):
        if gap and first:
            time.sleep(gap)
        pipe = db.pipeline(transaction=False)
        for args in sent[first:first + per_trip]:
            pipe.execute_command(*args)
        errors += sum(isinstance(answer, redis.ResponseError) for answer in pipe.execute(raise_on_error=False))
    return errors
