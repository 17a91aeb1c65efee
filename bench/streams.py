"""Benchmark: callbacks and job reads with 300 streams open beside none open, and Redis commands per stored job.

    .venv/bin/python -m bench.streams [--streams 300] [--callbacks 150] [--reads 600] [--cost-jobs 100]

One stack (web of the Procfile, 2 workers, the simulator answering submissions after ~1 s). For each setting, 0
streams then ``--streams``: open that many streams (half ``GET /v1/jobs/{id}/events`` on pending jobs, half
``GET /v1/events`` as the admin, which shows every job's change) read by one client thread, then time
``--callbacks`` signed Ready callbacks (2 at a time; each makes events for the streams as its job turns ready then
stored) and ``--reads`` ``GET /v1/jobs/{id}`` (4 at a time) while the callbacks go on. Then, with no stream open,
``--cost-jobs`` jobs submitted, called back and stored, with Redis's ``INFO commandstats`` reset before and read
after: commands per stored job, and of them ``PUBLISH`` (the announcements of changes). Run it from an export of the
previous release for the figures before.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import threading
import time

import requests

from bench.common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    create_jobs,
    fmt,
    log,
    percentile,
    print_report,
    send_ready_callback,
    thread_map,
    timed_ready_callback,
    wait_all_terminal,
)

TARGET_P99_MS = 100.0


class Readers:
    """Many open streams, read by one thread (as a browser reads its tabs' streams: a little at a time)."""

    def __init__(self, stack: BenchStack, paths: list[str]):
        self.selector = selectors.DefaultSelector()
        self.bytes = 0
        self.socks: list[socket.socket] = []
        host, port = stack.base_url.removeprefix("http://").split(":")
        token = stack.env["API_TOKENS"].split(",")[0]
        for path in paths:
            sock = socket.create_connection((host, int(port)))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.socks.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.2):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                self.bytes += len(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


def measure(stack: BenchStack, streams: int, callbacks: int, reads: int) -> dict[str, float]:
    pending = create_jobs(stack, max(streams // 2, 1), prompt="[pending] [drop] streamed")
    finishing = create_jobs(stack, callbacks, prompt="[pending] [drop] called back")
    paths = [f"/v1/jobs/{job.job_id}/events" for job in pending[:streams // 2]]
    paths += ["/v1/events"] * (streams - len(paths))
    readers = Readers(stack, paths)
    time.sleep(2.0)  # every stream has its first events (nothing on the server says so)
    acks: list[float] = []
    read_times: list[float] = []
    auth = dict(stack.api_session().headers)

    def read(session: requests.Session, job: BenchJob) -> float:
        started = time.perf_counter()
        response = session.get(f"{stack.base_url}/v1/jobs/{job.job_id}", headers=auth, timeout=30)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    def read_all() -> None:
        targets = [pending[n % len(pending)] for n in range(reads)]
        read_times.extend(thread_map(read, targets, 4))

    reader = threading.Thread(target=read_all)
    reader.start()
    acks = thread_map(lambda session, job: send_ready_callback(session, stack, job), finishing, 2)
    reader.join()
    wait_all_terminal(stack.redis(), [job.job_id for job in finishing], timeout=120)
    got = readers.bytes
    readers.close()
    return {"ack_p50": percentile(acks, 50), "ack_p99": percentile(acks, 99), "read_p50": percentile(read_times, 50),
            "read_p99": percentile(read_times, 99), "stream_bytes": got}


def redis_cost(stack: BenchStack, jobs: int) -> dict[str, float]:
    """Redis commands per job from submission to stored (no stream open), from INFO commandstats."""
    db = stack.redis()
    db.config_resetstat()
    made = create_jobs(stack, jobs, prompt="[pending] cost")
    thread_map(lambda session, job: timed_ready_callback(session, stack, job), made, 2)
    wait_all_terminal(db, [job.job_id for job in made], timeout=180)
    time.sleep(2.0)  # thumbnails and notifications settle
    stats = db.info("commandstats")
    total = sum(int(v["calls"]) for v in stats.values())
    publish = int(stats.get("cmdstat_publish", {}).get("calls", 0))
    top = sorted(((int(v["calls"]) / jobs, name.removeprefix("cmdstat_")) for name, v in stats.items()), reverse=True)
    log("commands per job: " + ", ".join(f"{name} {calls:.1f}" for calls, name in top[:12]))
    return {"per_job": total / jobs, "publish": publish / jobs}


def run(args) -> Section:
    section = Section("Streams")
    with BenchStack("streams", log_level=args.log_level, MAX_STREAMS_PER_CALLER=str(max(args.streams, 20))) as stack:
        stack.start(workers=2)
        stack.sim_settings(max_active=100_000, url_ttl=7200, submit_delay=1.0)
        cost = None
        if args.cost_jobs:  # first, on a clean stack: the pending jobs of the settings below would be polled meanwhile
            log(f"streams: Redis commands of {args.cost_jobs} stored jobs")
            cost = redis_cost(stack, args.cost_jobs)
        log("streams: none open")
        none = measure(stack, 0, args.callbacks, args.reads)
        log(f"streams: {args.streams} open")
        many = measure(stack, args.streams, args.callbacks, args.reads)
        for name, key in (("callback acknowledged", "ack"), ("GET /v1/jobs/{id}", "read")):
            for pct in ("p50", "p99"):
                value, base = many[f"{key}_{pct}"], none[f"{key}_{pct}"]
                target = f"<= {TARGET_P99_MS:g}" if pct == "p99" else ""
                section.rows.append(Row(f"{name} with {args.streams} streams open, {pct} ms", fmt(value), fmt(base),
                                        fmt(value / base, 2), target, value <= TARGET_P99_MS if pct == "p99" else None))
        section.notes.append(f"baseline: the same callbacks and reads with no stream open; the {args.streams} streams "
                             f"received {many['stream_bytes'] / 1024:.0f} KiB meanwhile")
        if cost is not None:
            # Every command of the run (its submissions, RQ's, the sweeps', the thumbnails'), those inside scripts
            # too: compare with the previous release's, run from an export of it.
            section.rows.append(Row("Redis commands per job, submitted to stored (no stream open)", fmt(cost["per_job"])))
            section.notes.append(f"of them PUBLISH (announcements of changes): {cost['publish']:.2f} per job")
        return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=300, help="streams open in the second setting (default 300)")
    parser.add_argument("--callbacks", type=int, default=150, help="timed callbacks per setting")
    parser.add_argument("--reads", type=int, default=600, help="timed job reads per setting")
    parser.add_argument("--cost-jobs", type=int, default=100, help="jobs of the Redis cost run (0: none)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
