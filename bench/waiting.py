"""Benchmark: how soon a ``Prefer: wait`` read answers once its job ends, beside an app that polls.

    .venv/bin/python -m bench.waiting [--waiters 1,200] [--poll-interval 0.5]

For each count W: W jobs through ``POST /v1/jobs`` whose simulator tasks stay Pending, one
client per job. fluxhook: each client sends ``GET /v1/jobs/{id}`` with ``Prefer: wait=60``.
Baseline (what an app does without it): each client sends a plain GET every ``--poll-interval``
seconds. Once every client is in, the bench completes the tasks one after the other and sends
their signed Ready callbacks (2 at a time), timing each acknowledgement; the worker stores the
images. A client's delay is from its job's ``completed_at`` (written by the worker as the job
turns stored) to the moment its answer arrived (both wall clocks of this machine).
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import threading
import time

import requests

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
)

TARGET_DELAY_MS = 50.0
TARGET_ACK_P99_MS = 100.0


class Clients:
    """One client thread per job, each recording when its job's terminal answer arrived."""

    def __init__(self, stack: BenchStack, jobs: list[BenchJob], poll_interval: float | None):
        self.stack, self.jobs, self.poll_interval = stack, jobs, poll_interval
        self.answered: dict[str, float] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(job,), daemon=True) for job in jobs]

    def _run(self, job: BenchJob) -> None:
        session = self.stack.api_session()
        url = f"{self.stack.base_url}/v1/jobs/{job.job_id}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.poll_interval is None:
                response = session.get(url, headers={"Prefer": "wait=60"}, timeout=90)
            else:
                response = session.get(url, timeout=30)
            with self._lock:
                self.requests += 1
            if response.json()["status"] in ("stored", "failed", "expired", "moderated"):
                self.answered[job.job_id] = time.time()
                return
            if self.poll_interval is not None:
                time.sleep(self.poll_interval)  # the baseline's own loop: this is what it measures

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=150)


def finish_jobs(stack: BenchStack, jobs: list[BenchJob]) -> list[float]:
    """Complete each job's task and send its Ready callback, 2 at a time; the acknowledgements' times in ms."""
    sim = stack.sim_base

    def finish(session: requests.Session, job: BenchJob) -> float:
        sample = complete_and_sample(session, sim, job.bfl_id)
        fetch(session, sample)  # the simulator renders an image on its first fetch: not fluxhook's time
        return send_ready_callback(session, stack, job, sample)

    return thread_map(finish, jobs, 2)


def one_run(stack: BenchStack, count: int, poll_interval: float | None) -> dict[str, float]:
    jobs = create_jobs(stack, count, prompt="[pending] [drop] waiting")
    clients = Clients(stack, jobs, poll_interval)
    clients.start()
    time.sleep(1.0)  # every client has sent its first request (there is no server-side signal to wait on)
    started_requests = clients.requests
    acks = finish_jobs(stack, jobs)
    clients.join()
    db = stack.redis()
    delays = []
    for job in jobs:
        completed = db.hget(KEYS.job(job.job_id), "completed_at")
        if job.job_id not in clients.answered or completed is None:
            raise RuntimeError(f"job {job.job_id} was not answered as terminal")
        delays.append((clients.answered[job.job_id] - float(completed)) * 1000)
    return {"p50": percentile(delays, 50), "p99": percentile(delays, 99), "ack_p50": percentile(acks, 50),
            "ack_p99": percentile(acks, 99), "requests": clients.requests - started_requests}


def run(args) -> Section:
    section = Section("Prefer: wait")
    with BenchStack("waiting", log_level=args.log_level) as stack:
        stack.start(workers=2)
        stack.sim_settings(max_active=100_000, url_ttl=7200)
        for count in args.waiters:
            log(f"waiting: {count} waiter(s)")
            waited = one_run(stack, count, None)
            log(f"waiting: {count} poller(s) every {args.poll_interval:g} s")
            polled = one_run(stack, count, args.poll_interval)
            section.rows += [
                Row(f"{count} client(s): answer after the job ended, p50 ms", fmt(waited["p50"]), fmt(polled["p50"]),
                    fmt(waited["p50"] / polled["p50"], 2), f"<= {TARGET_DELAY_MS:g}", waited["p50"] <= TARGET_DELAY_MS),
                Row(f"{count} client(s): answer after the job ended, p99 ms", fmt(waited["p99"]), fmt(polled["p99"]),
                    fmt(waited["p99"] / polled["p99"], 2), f"<= {TARGET_DELAY_MS:g}", waited["p99"] <= TARGET_DELAY_MS),
                Row(f"{count} client(s): callback acknowledged, p99 ms", fmt(waited["ack_p99"]), fmt(polled["ack_p99"]),
                    "", f"<= {TARGET_ACK_P99_MS:g}", waited["ack_p99"] <= TARGET_ACK_P99_MS),
            ]
            section.notes.append(
                f"{count} client(s): requests after all were in: {waited['requests']} waiting vs {polled['requests']} "
                f"polling; callback acknowledged p50 {waited['ack_p50']:.1f} ms vs {polled['ack_p50']:.1f} ms")
        section.notes.append("baseline: the same clients polling GET /v1/jobs/{id} every "
                             f"{args.poll_interval:g} s, as an app does without Prefer: wait")
        return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.waiting", description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", default="1,200", help="client counts, comma-separated (default 1,200)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="the polling baseline's interval, s")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    args.waiters = [int(n) for n in args.waiters.split(",")]
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
