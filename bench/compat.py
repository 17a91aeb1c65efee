"""Benchmark: the BFL-compatible API beside fluxhook's own, in one run on one stack.

    .venv/bin/python -m bench.compat [--submissions 300] [--pollers 200] [--poll-interval 0.5] [--seconds 20]

1. Submission: ``POST /v1/flux-2-pro`` (``x-key``, the body BFL would get) and ``POST /v1/jobs`` (bearer token,
   the same body as ``input``), alternated one after the other from one client, so both see the same
   machine; each one submits to the simulator (tasks stay Pending). p50 and p99 of each, and the difference.
2. Polling: ``--pollers`` clients (in 4 processes, so the clients' own interpreter lock does not time
   them) each poll ``GET /v1/get_result`` for a job of its own every ``--poll-interval`` seconds, as apps
   written for BFL do; meanwhile the bench completes tasks of those jobs and sends their signed Ready
   callbacks, 2 at a time, timing each acknowledgement (the workers store the images, the pollers see Ready).
   Baseline: the same with fresh jobs, polled through fluxhook's own ``GET /v1/jobs/{id}``.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time

import requests

from fluxhook.store.keys import KEYS

from .common import (BenchJob, BenchStack, Row, Section, complete_and_sample, fetch, fmt, loadavg, log,
                     percentile, print_notes, print_table, signed_callback, thread_map)

TARGET_EXTRA_P50_MS = 2.0
TARGET_POLL_P99_MS = 10.0
TARGET_ACK_P99_MS = 100.0
CLIENT_PROCESSES = 4
WARM_UP = 20


def _timed(session: requests.Session, method: str, url: str, **kwargs) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = session.request(method, url, timeout=30, **kwargs)
    return (time.perf_counter() - started) * 1000, response


def submissions(stack: BenchStack, count: int) -> dict[str, list[float]]:
    """Each route's submission times (ms), the two alternated (and which goes first, too)."""
    token = stack.env["API_TOKENS"].split(",")[0]
    session = requests.Session()
    session.trust_env = False
    times: dict[str, list[float]] = {"compat": [], "jobs": []}

    def compat(n: int) -> float:
        took, response = _timed(session, "POST", f"{stack.base_url}/v1/flux-2-pro", headers={"x-key": token},
                                json={"prompt": f"[pending] [drop] bench compat {n}"})
        if response.status_code != 200:
            raise RuntimeError(f"POST /v1/flux-2-pro answered {response.status_code}: {response.text[:200]}")
        return took

    def jobs(n: int) -> float:
        took, response = _timed(session, "POST", f"{stack.base_url}/v1/jobs",
                                headers={"Authorization": f"Bearer {token}"},
                                json={"model": "flux-2-pro", "input": {"prompt": f"[pending] [drop] bench compat {n}"}})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
        return took

    for n in range(WARM_UP + count):
        pair = [("compat", compat), ("jobs", jobs)]
        for name, send in (pair if n % 2 else reversed(pair)):
            took = send(n)
            if n >= WARM_UP:
                times[name].append(took)
    return times


def _poll(base_url: str, token: str, job_ids: list[str], interval: float, start_at: float, until: float,
          out, compat: bool) -> None:
    """One client process: a thread per job, each polling its job every ``interval`` s until ``until``: through
    ``get_result`` (``compat``), else through fluxhook's own ``GET /v1/jobs/{id}``."""
    took: list[float] = []
    ready = []
    lock = threading.Lock()

    def client(job_id: str, offset: float) -> None:
        session = requests.Session()
        session.trust_env = False
        url = f"{base_url}/v1/get_result?id={job_id}" if compat else f"{base_url}/v1/jobs/{job_id}"
        mine, seen_ready = [], False
        next_at = start_at + offset
        while True:
            time.sleep(max(0.0, next_at - time.time()))
            if time.time() >= until:
                break
            ms, response = _timed(session, "GET", url, headers={"x-key": token})
            mine.append(ms)
            seen_ready = seen_ready or response.json()["status"] in ("Ready", "stored")
            next_at += interval
        with lock:
            took.extend(mine)
            ready.append(seen_ready)

    threads = [threading.Thread(target=client, args=(job_id, interval * i / len(job_ids)), daemon=True)
               for i, job_id in enumerate(job_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((took, sum(ready)))


def create_compat_jobs(stack: BenchStack, count: int) -> list[BenchJob]:
    token = stack.env["API_TOKENS"].split(",")[0]

    def create(session: requests.Session, n: int) -> BenchJob:
        response = session.post(f"{stack.base_url}/v1/flux-2-pro", headers={"x-key": token}, timeout=30,
                                json={"prompt": f"[pending] [drop] bench poller {n}"})
        response.raise_for_status()
        job_id = response.json()["id"]
        return BenchJob(job_id, stack.redis().hget(KEYS.job(job_id), "bfl_id"))

    return thread_map(create, range(count), 6)


def polling(stack: BenchStack, pollers: int, interval: float, seconds: float, callbacks: int, compat: bool) -> dict:
    jobs = create_compat_jobs(stack, pollers)
    token = stack.env["API_TOKENS"].split(",")[0]
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 1.0
    until = start_at + seconds
    shares = [[j.job_id for j in jobs[i::CLIENT_PROCESSES]] for i in range(CLIENT_PROCESSES)]
    processes = [context.Process(target=_poll,
                                 args=(stack.base_url, token, share, interval, start_at, until, out, compat))
                 for share in shares]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at + 2.0 - time.time()))  # the pollers are all at it before the first callback

    def finish(session: requests.Session, job: BenchJob) -> float:
        sample = complete_and_sample(session, stack.sim_base, job.bfl_id)
        fetch(session, sample)  # the simulator renders an image on its first fetch: not fluxhook's time
        callback = signed_callback(stack, job, sample)
        started = time.perf_counter()
        response = session.post(callback.url, data=callback.body, headers=callback.headers, timeout=30)
        took = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"callback answered {response.status_code}: {response.text[:200]}")
        return took

    acks = thread_map(finish, jobs[:callbacks], 2)
    callbacks_done = time.time()
    polls, ready = [], 0
    for _ in processes:
        took, seen = out.get(timeout=seconds + 120)
        polls += took
        ready += seen
    for process in processes:
        process.join(timeout=30)
    return {"polls": polls, "acks": acks, "ready": ready, "rate": len(polls) / seconds,
            "callbacks_in_window": callbacks_done <= until}


def run(args) -> Section:
    section = Section("BFL-compatible API")
    stack = BenchStack("compat", log_level=args.log_level)
    try:
        stack.start(workers=2)
        stack.sim_settings(max_active=100_000, url_ttl=7200)
        log(f"compat: {args.submissions} submissions through each route, alternated")
        times = submissions(stack, args.submissions)
        compat50, jobs50 = percentile(times["compat"], 50), percentile(times["jobs"], 50)
        section.rows += [
            Row("POST /v1/{model} vs POST /v1/jobs, p50 ms", fmt(compat50, 2), fmt(jobs50, 2),
                f"+{compat50 - jobs50:.2f} ms", f"<= +{TARGET_EXTRA_P50_MS:g} ms",
                compat50 - jobs50 <= TARGET_EXTRA_P50_MS),
            Row("POST /v1/{model} vs POST /v1/jobs, p99 ms", fmt(percentile(times["compat"], 99), 2),
                fmt(percentile(times["jobs"], 99), 2)),
        ]
        polled = {}
        for compat in (True, False):
            route = "GET /v1/get_result" if compat else "GET /v1/jobs/{id}"
            log(f"compat: {args.pollers} pollers of {route} every {args.poll_interval:g} s for {args.seconds:g} s, "
                f"{args.callbacks} callbacks meanwhile")
            polled[compat] = polling(stack, args.pollers, args.poll_interval, args.seconds, args.callbacks, compat)
        ours, own = polled[True], polled[False]

        def pct(run: dict, key: str, n: int) -> float:
            return percentile(run[key], n)

        section.rows += [
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p99 ms", fmt(pct(ours, "polls", 99), 2),
                fmt(pct(own, "polls", 99), 2), fmt(pct(ours, "polls", 99) / pct(own, "polls", 99), 2),
                f"<= {TARGET_POLL_P99_MS:g}", pct(ours, "polls", 99) <= TARGET_POLL_P99_MS),
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p50 ms", fmt(pct(ours, "polls", 50), 2),
                fmt(pct(own, "polls", 50), 2), fmt(pct(ours, "polls", 50) / pct(own, "polls", 50), 2)),
            Row("callback acknowledged meanwhile, p99 ms", fmt(pct(ours, "acks", 99), 2), fmt(pct(own, "acks", 99), 2),
                "", f"<= {TARGET_ACK_P99_MS:g}", pct(ours, "acks", 99) <= TARGET_ACK_P99_MS),
            Row("callback acknowledged meanwhile, p50 ms", fmt(pct(ours, "acks", 50), 2), fmt(pct(own, "acks", 50), 2)),
        ]
        section.notes += [
            "submission baseline: POST /v1/jobs with the same body as input, alternated with POST /v1/{model} "
            f"from one client after {WARM_UP} warm-up pairs; each submits to the simulator",
            *(f"polling {name}: {len(run['polls'])} polls ({run['rate']:.0f}/s) from {CLIENT_PROCESSES} "
              f"client processes; {run['ready']} clients saw their job done; {len(run['acks'])} callbacks, "
              f"{'all' if run['callbacks_in_window'] else 'NOT all'} within the polling window"
              for name, run in (("get_result", ours), ("GET /v1/jobs/{id} (baseline)", own))),
            f"load average at the end: {loadavg()} (2 cores)",
        ]
        return section
    finally:
        stack.stop()
        stack.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compat", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=300, help="submissions through each route")
    parser.add_argument("--pollers", type=int, default=200, help="clients polling get_result")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="each poller's interval, s")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the pollers poll")
    parser.add_argument("--callbacks", type=int, default=60, help="Ready callbacks sent while they poll")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    section = run(args)
    print_table([section])
    print_notes([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
