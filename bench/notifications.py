"""Benchmark: notifications under a flaky receiver (SPEC §16): every message delivered or failed, none lost.

    .venv/bin/python -m bench.notifications [--jobs 1000] [--failure 0.5] [--settle 600] [--workers 2]

The Procfile's web and ``--workers`` workers, the BFL simulator and an app's receiver on 127.0.0.1 that answers
``500`` to a random ``--failure`` share of the POSTs it gets (seeded) and ``200`` to the rest. ``--jobs`` jobs are
submitted and stored; then, for up to ``--settle`` seconds, the bench waits for every job.ended message to leave
``pending`` (delivered, or failed after its 14th attempt). A message still pending then must be waiting for its
next attempt (in ``messages_due``, its work line or RQ): one that is none of these is lost. Job reads
(``GET /v1/jobs/{id}``) are timed while the receiver is failing and again once every message settled, in the same
run. Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import base64
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rq.job import Job as RQJob

from devtools.processes import free_port
from fluxhook.lifecycle.steps.enqueueing import notify_task_id
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import member
from fluxhook.store.work_lines import NOTIFY

from .common import (
    BenchStack,
    Row,
    Section,
    fmt,
    log,
    percentile,
    print_notes,
    print_table,
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
    parser.add_argument("--reads", type=int, default=400, help="job reads timed in each phase (default 400)")
    return parser.parse_args(argv)


def _states(db, job_ids: list[str]) -> list[str]:
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(KEYS.message(f"msg_{job_id}"), "state")
    return [state or "missing" for state in pipe.execute()]


def _waiting_for_an_attempt(db, message_id: str) -> bool:
    """Whether a pending message will be tried again: due later, in its work line, being moved, or in RQ."""
    item = member("admin", message_id)
    return (db.zscore(KEYS.messages_due, item) is not None or db.zscore(KEYS.work_line(NOTIFY), item) is not None
            or db.hexists(KEYS.work_moving(NOTIFY), item) or bool(db.exists(RQJob.key_for(notify_task_id(message_id)))))


def _read_times(stack: BenchStack, job_ids: list[str], count: int) -> list[float]:
    """Milliseconds of ``count`` reads of random jobs, four at a time."""
    picks = [random.choice(job_ids) for _ in range(count)]

    def read(session, job_id: str) -> float:
        started = time.perf_counter()
        response = session.get(f"{stack.base_url}/v1/jobs/{job_id}", timeout=30)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    token = stack.env["API_TOKENS"].split(",")[0]

    def authorized_read(session, job_id: str) -> float:
        session.headers["Authorization"] = f"Bearer {token}"
        return read(session, job_id)

    return thread_map(authorized_read, picks, 4)


def run(args: argparse.Namespace) -> list[Section]:
    receiver = FlakyReceiver(args.failure)
    stack = BenchStack("notifications", LOG_LEVEL="WARNING", NOTIFY_URL=receiver.url(), NOTIFY_SECRET=SECRET,
                       NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receiver.port}")
    try:
        stack.start(workers=args.workers)
        db = stack.redis()
        token = stack.env["API_TOKENS"].split(",")[0]
        log(f"submitting {args.jobs} jobs")

        def submit(session, n: int) -> str:
            response = session.post(f"{stack.base_url}/v1/jobs", headers={"Authorization": f"Bearer {token}"},
                                     json={"model": "flux-2-pro", "input": {"prompt": f"a notified fox {n}"}},
                                     timeout=60)
            if response.status_code != 202:
                raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
            return response.json()["id"]

        job_ids = thread_map(submit, range(args.jobs), 6)
        ended_in = wait_all_terminal(db, job_ids, timeout=600)
        log(f"every job ended in {ended_in:.1f} s; reading jobs while the receiver fails")
        during = _read_times(stack, job_ids, args.reads)
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
        after = _read_times(stack, job_ids, args.reads)
        with receiver.lock:
            oks = Counter(webhook_id for (webhook_id, status), n in receiver.answers.items() if status == 200
                          for _ in range(n))
            failures = sum(n for (_, status), n in receiver.answers.items() if status == 500)
        delivered_seen = sum(1 for job_id in job_ids if oks.get(f"msg_{job_id}"))
        repeats = sum(n - 1 for n in oks.values() if n > 1)
        attempts = sum(receiver.answers.values())
    finally:
        stack.stop()
        stack.cleanup()
        receiver.stop()
    p99_during, p99_after = percentile(during, 99), percentile(after, 99)
    section = Section(f"Notifications: {args.jobs} jobs stored, a receiver answering 500 to "
                      f"{args.failure:.0%} of POSTs ({attempts} POSTs, {failures} answered 500)", [
        Row(f"messages delivered / failed / pending with a retry due, after {settled_in:.0f} s",
            f"{counts['delivered']} / {counts['failed']} / {scheduled}",
            target="each delivered or failed, or its next attempt due",
            met=counts["delivered"] + counts["failed"] + scheduled == args.jobs),
        Row("messages lost (pending with no attempt to come, or never made)", str(lost), target="0", met=lost == 0),
        Row("delivered messages the receiver answered 200 / 200s repeated", f"{delivered_seen} / {repeats}",
            target="(info) at least once"),
        Row("GET /v1/jobs/{id} p99 while the receiver fails", fmt(p99_during, 1, " ms"),
            baseline=f"once every message settled: {fmt(p99_after, 1, ' ms')}", target="(info)"),
    ], notes=[f"every job stored in {ended_in:.1f} s; reads: {args.reads} in each phase, 4 at a time"])
    return [section]


def main(argv: list[str] | None = None) -> None:
    sections = run(parse_args(argv))
    print_table(sections)
    print_notes(sections)


if __name__ == "__main__":
    main()
