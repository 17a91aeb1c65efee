"""What a stored job costs a busy Redis, and how many jobs a second one Redis core carries: a run's commands
(``redis_replay.capture``) sent by several copies of it at once.

The bench's run leaves Redis idle nearly all of the time (BFL's latency, 24 slots an account), and an idle server's
every wake-up finds its caches cold: the same commands cost it more of its own time than on a server that is never
idle (``redis_cost`` shows it: the scripts' own time, replayed one a round trip 2 ms apart and back to back). A
deployment near what one core carries is the busy case. Here
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
import queue
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import hiredis
import redis

from devtools.processes import RedisServer

from .redis_replay import STREAM, Capture, cpu_seconds, send
from .redis_stack import start_redis_server

COPIES = 8


@dataclass(frozen=True)
class Busy:
    """``copies`` copies of a run at once: Redis's CPU per stored job (µs), its CPU over the wall time (``busy``, 1 is
    a whole core: the CPU per job is a busy core's only as far as this reaches 1), the jobs replayed a second, the
    round trips and socket reads per job, and the errors Redis answered over all copies (the run's own: a script's call
    before its load, answered ``NOSCRIPT``, unless another copy loaded it first)."""

    copies: int
    cpu_us: float
    busy: float
    jobs_per_second: float
    trips: float
    reads: float
    errors: int


class CopyFailed(RuntimeError):
    """A copy could not send its commands (Redis closed the connection, or did not answer)."""


def busy(captured: Capture, one_a_trip: bool, copies: int = COPIES) -> Busy:
    """``captured`` sent by ``copies`` clients at once, each to its own database, in the round trips ``MONITOR`` shows
    or (``one_a_trip``) each command in its own."""
    sizes = [1] * len(captured.run) if one_a_trip else captured.trips
    trips = _trips(captured.run, sizes)
    context = multiprocessing.get_context("fork")  # the copies take the packed trips as they are
    ready, go, reports = context.Barrier(copies + 1), context.Barrier(copies + 1), context.Queue()
    clients: list[BaseProcess] = []
    with tempfile.TemporaryDirectory(prefix="fluxhook-busy-") as directory:
        server = start_redis_server(RedisServer(directory=directory))
        try:
            for copy in range(copies):
                send(redis.Redis(port=server.port, db=copy), captured.before, STREAM)
            db = redis.Redis(port=server.port)
            clients = [context.Process(target=_copy, args=(server.port, copy, trips, (ready, go), reports),
                                       daemon=True) for copy in range(copies)]
            for client in clients:
                client.start()
            try:
                ready.wait(60)  # every copy connected, its database chosen: what Redis does next is the copies' run
                first = db.info("all")
                go.wait(60)
            except threading.BrokenBarrierError:
                _report(reports, clients)  # a copy failed, or one timed out: each then reports why
                raise
            spans = [_report(reports, clients) for _ in clients]
            last = db.info("all")
        finally:
            for client in clients:
                client.kill()
                client.join(10)
            server.stop()
    cpu = cpu_seconds(first, last)
    wall = max(ended for _, _, ended in spans) - min(began for _, began, _ in spans)
    # Less the last INFO's read and each copy's close (a read that finds the connection's end).
    reads = last["total_reads_processed"] - first["total_reads_processed"] - 1 - copies
    jobs = max(captured.jobs, 1) * copies
    return Busy(copies, cpu * 1e6 / jobs, cpu / wall, jobs / wall, len(sizes) / max(captured.jobs, 1),
                reads / jobs, sum(errors for errors, _, _ in spans))


def _report(reports: Queue, clients: list[BaseProcess]) -> tuple[int, float, float]:
    """The next copy's report (its errors, when it began and ended); raises if a copy failed or died."""
    while True:
        try:
            report = reports.get(timeout=1)
        except queue.Empty:
            if any(client.exitcode not in (None, 0) for client in clients):
                raise CopyFailed("a copy of the run died (its traceback is above)") from None
            continue
        if isinstance(report, str):
            raise CopyFailed(report)
        return report


def _trips(run: list[list[bytes]], sizes: list[int]) -> list[tuple[bytes, int]]:
    """``run`` cut into round trips of ``sizes`` commands, each as the bytes a client sends and its count of answers."""
    packed, first = [], 0
    for count in sizes:
        packed.append((b"".join(hiredis.pack_command(tuple(args)) for args in run[first:first + count]), count))
        first += count
    return packed


def _copy(port: int, db: int, trips: list[tuple[bytes, int]], barriers: tuple[Barrier, Barrier],
          reports: Queue) -> None:
    """One copy: its database chosen, then, once all are ready and go, every trip sent and answered in turn. Reports
    its errors and when it began and ended, or what failed (the other copies then stop at their barrier)."""
    ready, go = barriers
    reader = hiredis.Reader()
    errors = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(hiredis.pack_command((b"SELECT", str(db).encode())))
            _answers(sock, reader, 1)
            ready.wait(60)
            go.wait(60)
            began = time.monotonic()
            for payload, count in trips:
                sock.sendall(payload)
                errors += _answers(sock, reader, count)
            ended = time.monotonic()
        reports.put((errors, began, ended))  # once closed: Redis reads the close before the bench's last INFO
    except BaseException as failure:
        ready.abort()
        go.abort()
        reports.put(f"copy {db}: {failure!r}")


def _answers(sock: socket.socket, reader: hiredis.Reader, count: int) -> int:
    """Reads ``count`` answers; how many were errors."""
    errors = 0
    while count:
        answer = reader.gets()
        if answer is False:
            received = sock.recv(1 << 16)
            if not received:
                raise CopyFailed("Redis closed the connection")
            reader.feed(received)
            continue
        errors += isinstance(answer, hiredis.ReplyError)
        count -= 1
    return errors
