"""What a stored job costs a busy Redis, and how many jobs a second one Redis core carries: a run's commands
(``redis_replay.capture``) sent by several copies of it at once.

The bench's run leaves Redis idle nearly all of the time (BFL's latency, 24 slots an account), and an idle server's
every wake-up finds its caches cold: the same commands cost it more of its own time than on a server that is never
idle. (On this machine, a run's commands replayed one a round trip with 2 ms between trips took Redis 0.81 ms of
``EVALSHA`` time a job; back to back, 0.38 ms.) A deployment near what one core carries is the busy case. Here
``copies`` clients (processes, on the bench's CPUs) each send the run's commands, in the order Redis ran them, each to
a database of its own (``SELECT``): each copy's commands meet the data they met in the run, and Redis runs the copies
interleaved, as it runs many jobs' commands at once. They start together; Redis's CPU over their jobs is what a job
costs it at that load, and its CPU over the wall time how busy it was.

The round trips are sent two ways, which bound the run's: as ``MONITOR`` shows them (``Capture.trips``: the commands of
one client with no other's between, fewer than the run's, as a client's trips back to back look like one), and each
command its own. What the replay leaves out is ``redis_replay``'s: the blocking pops and the commands that only wait.
"""

from __future__ import annotations

import multiprocessing
import socket
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

import hiredis
import redis

from devtools.processes import RedisServer

from .redis_replay import STREAM, Capture, send
from .redis_stack import start_redis_server

COPIES = 8


@dataclass(frozen=True)
class Busy:
    """``copies`` copies of a run at once: Redis's CPU per stored job (µs), its CPU over the wall time (``busy``, 1 is
    a whole core), the jobs replayed a second, the round trips per job and the errors Redis answered (the run's own: a
    script's call before its load, answered ``NOSCRIPT``, unless another copy loaded it first)."""

    copies: int
    cpu_us: float
    busy: float
    jobs_per_second: float
    trips: float
    errors: int


def busy(captured: Capture, one_a_trip: bool, copies: int = COPIES) -> Busy:
    """``captured`` sent by ``copies`` clients at once, each to its own database, in the round trips ``MONITOR`` shows
    or (``one_a_trip``) each command in its own."""
    sizes = [1] * len(captured.run) if one_a_trip else captured.trips
    trips = _trips(captured.run, sizes)
    with tempfile.TemporaryDirectory(prefix="fluxhook-busy-") as directory:
        server = start_redis_server(RedisServer(directory=directory))
        try:
            for copy in range(copies):
                send(redis.Redis(port=server.port, db=copy), captured.before, STREAM)
            db = redis.Redis(port=server.port)
            context = multiprocessing.get_context("fork")  # the copies take the packed trips as they are
            start, reports = context.Barrier(copies + 1), context.Queue()
            clients = [context.Process(target=_copy, args=(server.port, copy, trips, start, reports))
                       for copy in range(copies)]
            for client in clients:
                client.start()
            first = db.info("all")
            start.wait(60)
            began = time.monotonic()
            answered = sum(reports.get(timeout=900) for _ in clients)
            wall = time.monotonic() - began
            last = db.info("all")
            for client in clients:
                client.join(10)
        finally:
            server.stop()
    cpu = last["used_cpu_user"] + last["used_cpu_sys"] - first["used_cpu_user"] - first["used_cpu_sys"]
    cpu -= (last["cmdstat_info"]["usec"] - first["cmdstat_info"]["usec"]) / 1e6
    jobs = max(captured.jobs, 1) * copies
    return Busy(copies, cpu * 1e6 / jobs, cpu / wall, jobs / wall, len(sizes) / max(captured.jobs, 1), answered)


def _trips(run: list[list[bytes]], sizes: list[int]) -> list[tuple[bytes, int]]:
    """``run`` cut into round trips of ``sizes`` commands, each as the bytes a client sends and its count of answers."""
    packed, first = [], 0
    for count in sizes:
        packed.append((b"".join(_resp(args) for args in run[first:first + count]), count))
        first += count
    return packed


def _resp(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def _copy(port: int, db: int, trips: list[tuple[bytes, int]], start: Barrier,
          errors: multiprocessing.Queue) -> None:
    """One copy: its database chosen, then at ``start`` every trip sent and answered in turn; puts its errors."""
    reader = hiredis.Reader()
    answered = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(_resp([b"SELECT", str(db).encode()]))
        _answers(sock, reader, 1)
        start.wait(60)
        for payload, count in trips:
            sock.sendall(payload)
            answered += _answers(sock, reader, count)
    errors.put(answered)


def _answers(sock: socket.socket, reader: hiredis.Reader, count: int) -> int:
    """Reads ``count`` answers; how many were errors."""
    errors = 0
    while count:
        answer = reader.gets()
        if answer is False:
            received = sock.recv(1 << 16)
            if not received:
                raise ConnectionError("Redis closed the connection")
            reader.feed(received)
            continue
        errors += isinstance(answer, hiredis.ReplyError)
        count -= 1
    return errors
