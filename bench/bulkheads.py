"""Benchmark: callbacks and job reads while submissions hang at BFL, with and without the web bulkheads.

    .venv/bin/python -m bench.bulkheads [--hanging 0,16,64] [--samples 100]

BFL is a stand-in (devtools/hanging_bfl.py) whose submissions hang until released. For each
count H of hanging submissions, H clients POST /v1/jobs at once; once BFL holds as many as will
reach it, the bench sends ``--samples`` signed callbacks (``Pending`` reports for submitted jobs,
one at a time) and as many ``GET /v1/jobs/{id}``, timing each answer (capped at ``--timeout``: an
answer that does not come in time counts as that long). Then BFL answers everything and the next
count starts.

fluxhook: the Procfile's web process as configured (work permits, and rooms for requests waiting
on BFL or on their job). Baseline, in the same run: the same processes with gunicorn's thread pool
cut to WEB_THREADS (``--threads``), which is the design without the rooms: every request, a
submission waiting on BFL included, holds one of the WEB_THREADS threads.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from devtools.hanging_bfl import HangingBFL
from devtools.processes import wait_until
from fluxhook.core import signing

from .common import BenchStack, Row, Section, fmt, log, percentile, print_report

TARGET_P99_MS = 100.0
WEB_THREADS = 4


def _timed(call, timeout: float) -> float:
    """Milliseconds ``call(timeout)`` took; ``timeout`` if it failed or did not answer in time."""
    started = time.perf_counter()
    try:
        response = call(timeout)
        if response.status_code >= 300:
            return timeout * 1000
    except requests.RequestException:
        return timeout * 1000
    return (time.perf_counter() - started) * 1000


def measure(stack: BenchStack, bfl: HangingBFL, hanging: int, samples: int, timeout: float,
            jobs: list[dict]) -> dict[str, float]:
    """Callback and read latencies while ``hanging`` submissions wait on BFL."""
    session = stack.api_session()
    key = stack.env["SECRET_KEY"]
    bfl.hang, bfl.release = True, threading.Event()
    pool = ThreadPoolExecutor(max(1, hanging))
    submissions = [pool.submit(stack.api_session().post, f"{stack.base_url}/v1/jobs", timeout=150,
                               json={"model": "flux-2-pro", "input": {"prompt": f"hanging {n}"}})
                   for n in range(hanging)]
    if hanging:
        # Every submission is either at BFL or answered (queued for a worker), or BFL stopped taking more.
        wait_until(lambda: bfl.hanging + sum(s.done() for s in submissions) >= hanging or bfl.hanging >= 2 * 8,
                   timeout=30, message="the submissions to reach BFL or be answered")
        time.sleep(0.5)  # let the ones still on their way arrive: there is nothing to wait on for them
    acks, reads = [], []
    for n in range(samples):
        job = jobs[n % len(jobs)]
        url = signing.job_webhook_url(stack.base_url, key, job["id"])
        headers = {"Content-Type": "application/json", "X-Webhook-Secret": signing.job_webhook_secret(key, job["id"])}
        body = f'{{"id": "{job["bfl_id"]}", "status": "Pending"}}'
        acks.append(_timed(lambda t, body=body, headers=headers, url=url:
                           session.post(url, data=body, headers=headers, timeout=t), timeout))
        reads.append(_timed(lambda t, job=job: session.get(f"{stack.base_url}/v1/jobs/{job['id']}", timeout=t), timeout))
    at_bfl = bfl.hanging
    bfl.release.set()
    bfl.hang = False
    for submission in submissions:
        try:
            submission.result(timeout=150)
        except requests.RequestException:
            pass
    pool.shutdown()
    return {"ack_p50": percentile(acks, 50), "ack_p99": percentile(acks, 99), "read_p99": percentile(reads, 99),
            "at_bfl": at_bfl}


def one_design(args, threads: int | None) -> dict[int, dict[str, float]]:
    bfl = HangingBFL(hang=False)
    stack = BenchStack("bulkheads", log_level=args.log_level, BFL_API_KEY="bench-key", BFL_API_BASE=bfl.url,
                       API_HOST_ALLOWLIST=bfl.host, WEB_THREADS=str(WEB_THREADS))
    if threads is not None:
        stack.stack.env["GUNICORN_CMD_ARGS"] += f" --threads {threads}"
    try:
        stack.start()
        session = stack.api_session()
        jobs = [session.post(f"{stack.base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"cb {n}"}},
                             timeout=30).json() for n in range(20)]
        assert all(job["status"] == "submitted" for job in jobs), jobs[0]
        figures = {}
        for hanging in args.hanging:
            log(f"bulkheads ({'baseline' if threads else 'fluxhook'}): {hanging} submissions hanging at BFL")
            figures[hanging] = measure(stack, bfl, hanging, args.samples, args.timeout, jobs)
        return figures
    finally:
        stack.stop()
        stack.cleanup()
        bfl.stop()


def run(args) -> Section:
    ours = one_design(args, None)
    baseline = one_design(args, WEB_THREADS)
    section = Section("web bulkheads: callbacks and reads while submissions hang at BFL")
    for hanging in args.hanging:
        o, b = ours[hanging], baseline[hanging]
        section.rows += [
            Row(f"{hanging} hanging: callback ack p50, ms", fmt(o["ack_p50"]), fmt(b["ack_p50"])),
            Row(f"{hanging} hanging: callback ack p99, ms", fmt(o["ack_p99"]), fmt(b["ack_p99"]), "",
                f"<= {TARGET_P99_MS:g}", o["ack_p99"] <= TARGET_P99_MS),
            Row(f"{hanging} hanging: job read p99, ms", fmt(o["read_p99"]), fmt(b["read_p99"]), "",
                f"<= {TARGET_P99_MS:g}", o["read_p99"] <= TARGET_P99_MS),
        ]
        section.notes.append(f"{hanging} hanging: requests BFL held while measuring (the BFL client's retries of "
                             f"submissions it gave up on included): {o['at_bfl']} (fluxhook) vs {b['at_bfl']} (baseline)")
    section.notes.append(f"{args.samples} callbacks and {args.samples} reads per count, one at a time; an answer "
                         f"not in {args.timeout:g} s counts as {args.timeout:g} s. Web: 2 processes, WEB_THREADS="
                         f"{WEB_THREADS}; baseline: gunicorn --threads {WEB_THREADS} (no rooms).")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulkheads", description=__doc__.splitlines()[0])
    parser.add_argument("--hanging", default="0,16,64", help="hanging submission counts (default 0,16,64)")
    parser.add_argument("--samples", type=int, default=50, help="callbacks and reads per count (default 50)")
    parser.add_argument("--timeout", type=float, default=2.0, help="longest wait for one answer, s (default 2)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the web processes")
    args = parser.parse_args(argv)
    args.hanging = [int(n) for n in args.hanging.split(",")]
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
