"""Benchmark: notifications under a flaky receiver: every message delivered or failed, none lost.

    .venv/bin/python -m bench.notifications [--jobs 1000] [--failure 0.5] [--settle 600] [--workers 2] [--callers 4]
                                           [--window 20]

The Procfile's web and ``--workers`` workers, the BFL simulator and an app's receiver on 127.0.0.1. Two settings in
one run, the same load each: ``--jobs`` jobs submitted (their tasks stay Pending), then BFL's Ready callback of each
sent by the bench, ``--callers`` at a time, each acknowledgement timed, while two readers time
``GET /v1/jobs/{id}`` until every job is stored and its job.ended made, and ``--window`` seconds more. After 50 jobs
of warm-up, not counted: the baseline, the receiver answering ``200`` always, and the receiver answering ``500`` to
a random ``--failure`` share of POSTs (seeded), its retries running beside the load, half the jobs each in turn
(baseline, failing, failing, baseline). Then, for up to ``--settle`` seconds, the bench waits for every message of
the failing phases to leave ``pending`` (delivered, or failed after its 14th attempt). A message still pending then
must be waiting for its next attempt (in ``notify_due``, or parked behind its receiver's attempts in flight): one that
is neither is lost.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import base64
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from devtools.processes import free_port
from fluxhook.store.keys import KEYS

from .common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    complete_and_sample,
    create_jobs,
    fetch,
    fmt,
    log,
    percentile,
    print_report,
    send_ready_callback,
    thread_map,
    wait_all_terminal,
)

SECRET = "whsec_" + base64.b64encode(b"fluxhook-bench-notify-key-32byte").decode()


class FlakyReceiver:
    """An app's receiver: 500 to a random share of POSTs, 200 to the rest; counts answers by webhook-id."""

    def __init__(self, failure: float, seed: int = 7):
        self.failure, self.rng, self.lock = failure, random.Random(seed), threading.Lock()
        self.answers: Counter[tuple[str, int]] = Counter()
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = 500 if receiver.rng.random() < receiver.failure else 200
                    receiver.answers[(self.headers.get("webhook-id", ""), status)] += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.notifications", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs submitted and stored (default 1,000)")
    parser.add_argument("--failure", type=float, default=0.5, help="share of POSTs answered 500 (default 0.5)")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="seconds to wait for every message to leave pending (default 600)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--window", type=float, default=20.0,
                        help="seconds each phase's reads go on after its last job.ended is made (default 20)")
    parser.add_argument("--callers", type=int, default=4, help="callbacks sent at a time (default 4)")
    return parser.parse_args(argv)


def _states(db, job_ids: list[str]) -> list[str]:
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(KEYS.message(f"msg_{job_id}"), "state")
    return [state or "missing" for state in pipe.execute()]


def _waiting_for_an_attempt(db, message_id: str) -> bool:
    """Whether a pending message will be tried again: due (later, or its attempt under way) or parked."""
    return any(db.zscan_iter(KEYS.notify_due, match=f"*|{message_id}")) or any(
        db.zscan_iter(KEYS.notify_parked, match=f"*|{message_id}"))


@dataclass
class Phase:
    """One phase's load: its jobs, and the milliseconds of each callback acknowledgement and job read meanwhile."""

    jobs: list[BenchJob]
    acks: list[float]
    reads: list[float]
    ended_in: float


def _phase(stack: BenchStack, db, receiver: FlakyReceiver, failure: float, count: int, callers: int,
           window: float) -> Phase:
    """``count`` jobs whose BFL callbacks the bench sends (``callers`` at a time, each acknowledgement timed) while
    two readers time ``GET /v1/jobs/{id}`` of them, until every job is stored and its job.ended made, and ``window``
    seconds more (a failing receiver's retries run then)."""
    receiver.failure = failure
    jobs = create_jobs(stack, count, prompt="[pending] [drop] a notified fox")
    samples = thread_map(lambda s, job: complete_and_sample(s, stack.sim_base, job.bfl_id), jobs, 4)
    thread_map(fetch, samples, 2)  # the simulator renders each image once, now, not while callbacks are timed
    job_ids = [job.job_id for job in jobs]
    acks: list[float] = []
    reads: list[float] = []
    done = threading.Event()
    token = stack.env["API_TOKENS"].split(",")[0]

    def reader() -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {token}"
        while not done.is_set():
            started = time.perf_counter()
            session.get(f"{stack.base_url}/v1/jobs/{random.choice(job_ids)}", timeout=30).raise_for_status()
            reads.append((time.perf_counter() - started) * 1000)

    def callback(session, item: tuple[BenchJob, str]) -> None:
        acks.append(send_ready_callback(session, stack, *item))

    readers = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
    for thread in readers:
        thread.start()
    started = time.monotonic()
    try:
        thread_map(callback, list(zip(jobs, samples, strict=True)), callers)
        wait_all_terminal(db, job_ids, timeout=600)
        # Every job.ended made and tried once: the retries of a failing receiver are under way.
        settle_until(lambda: "missing" not in _states(db, job_ids), 60)
        done.wait(window)
    finally:
        done.set()
        for thread in readers:
            thread.join(timeout=35)
    return Phase(jobs, acks, reads, time.monotonic() - started)


def settle_until(condition, timeout: float) -> bool:
    """Whether ``condition()`` came true within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def run(args: argparse.Namespace) -> list[Section]:
    receiver = FlakyReceiver(args.failure)
    stack = BenchStack("notifications", LOG_LEVEL="WARNING", NOTIFY_URL=receiver.url(), NOTIFY_SECRET=SECRET,
                       NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receiver.port}")
    try:
        stack.start(workers=args.workers)
        stack.sim_settings(max_active=100_000)
        db = stack.redis()
        log("warm-up: 50 jobs, not counted")
        _phase(stack, db, receiver, 0.0, min(50, args.jobs), args.callers, 0.0)
        # Baseline, failing, failing, baseline (half the jobs each): the second half of a run is slower than
        # the first whatever the receiver does (measured: both phases answered 200, the second's callback p99
        # was 50% higher), so each setting gets one early and one late half.
        half = args.jobs // 2
        rounds = [(0.0, half), (args.failure, half), (args.failure, args.jobs - half), (0.0, args.jobs - half)]
        phases: dict[float, list[Phase]] = {0.0: [], args.failure: []}
        for failure, count in rounds:
            log(f"{count} jobs called back, the receiver answering 500 to {failure:.0%}")
            phases[failure].append(_phase(stack, db, receiver, failure, count, args.callers, args.window))
            if failure == 0.0 and not phases[args.failure]:
                base_ids = [job.job_id for job in phases[0.0][0].jobs]
                settle_until(lambda ids=base_ids: set(_states(db, ids)) <= {"delivered"}, 120)
                with receiver.lock:
                    receiver.answers.clear()  # what the receiver answered counts the failing phases' messages
        baseline, flaky = (Phase([j for p in phases[f] for j in p.jobs], [a for p in phases[f] for a in p.acks],
                                 [r for p in phases[f] for r in p.reads], sum(p.ended_in for p in phases[f]))
                           for f in (0.0, args.failure))
        job_ids = [job.job_id for job in flaky.jobs]
        started = time.monotonic()
        states = _states(db, job_ids)
        while "pending" in states or "missing" in states:
            if time.monotonic() - started > args.settle:
                break
            time.sleep(1.0)
            states = _states(db, job_ids)
        settled_in = time.monotonic() - started
        counts = Counter(states)
        pending = [job_id for job_id, state in zip(job_ids, states, strict=True) if state == "pending"]
        scheduled = sum(_waiting_for_an_attempt(db, f"msg_{job_id}") for job_id in pending)
        lost = counts["missing"] + len(pending) - scheduled
        with receiver.lock:
            oks = Counter(webhook_id for (webhook_id, status), n in receiver.answers.items() if status == 200
                          for _ in range(n))
            failures = sum(n for (_, status), n in receiver.answers.items() if status == 500)
        delivered_seen = sum(1 for job_id in job_ids if oks.get(f"msg_{job_id}"))
        repeats = sum(n - 1 for n in oks.values() if n > 1)
        flaky_ids = {f"msg_{job_id}" for job_id in job_ids}
        attempts = sum(n for (webhook_id, _), n in receiver.answers.items() if webhook_id in flaky_ids)
    finally:
        stack.stop()
        stack.cleanup()
        receiver.stop()

    def p99(values: list[float]) -> str:
        return fmt(percentile(values, 99), 1, " ms")

    section = Section(f"Notifications: {args.jobs} jobs called back and stored, a receiver answering 500 to "
                      f"{args.failure:.0%} of POSTs ({attempts} POSTs, {failures} answered 500)", [
        Row(f"messages delivered / failed / pending with a retry due, after {settled_in:.0f} s",
            f"{counts['delivered']} / {counts['failed']} / {scheduled}",
            target="each delivered or failed, or its next attempt due",
            met=counts["delivered"] + counts["failed"] + scheduled == args.jobs),
        Row("messages lost (pending with no attempt to come, or never made)", str(lost), target="0", met=lost == 0),
        Row("delivered messages the receiver answered 200 / 200s repeated", f"{delivered_seen} / {repeats}",
            target="(info) at least once"),
        Row("BFL callback acknowledged -> 200, p99", p99(flaky.acks),
            baseline=f"receiver answering 200: {p99(baseline.acks)}", target="(info) unchanged"),
        Row("GET /v1/jobs/{id} p99", p99(flaky.reads),
            baseline=f"receiver answering 200: {p99(baseline.reads)}", target="(info) unchanged"),
    ], notes=[f"each setting: {args.jobs} jobs in two halves (baseline, failing, failing, baseline), their callbacks "
              f"{args.callers} at a time, 2 readers reading until every job stored and its job.ended made, and "
              f"{args.window:g} s more; baseline {baseline.ended_in:.1f} s, {len(baseline.reads)} reads; failing "
              f"{flaky.ended_in:.1f} s, {len(flaky.reads)} reads; the last baseline half meets the retries still due "
              "of the failing ones",
              f"callback p50 {fmt(percentile(baseline.acks, 50), 1, ' ms')} / {fmt(percentile(flaky.acks, 50), 1, ' ms')}, "
              f"read p50 {fmt(percentile(baseline.reads, 50), 1, ' ms')} / {fmt(percentile(flaky.reads, 50), 1, ' ms')} "
              "(baseline / failing)"])
    return [section]


def main(argv: list[str] | None = None) -> None:
    print_report(run(parse_args(argv)))


if __name__ == "__main__":
    main()
