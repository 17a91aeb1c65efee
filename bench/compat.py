"""Benchmark: the BFL-compatible API beside fluxhook's own, in one run on one stack.

    .venv/bin/python -m bench.compat [--submissions 300] [--pollers 200] [--poll-interval 0.5] [--seconds 20]

1. Submission: ``POST /v1/flux-2-pro`` (``x-key``, the body BFL would get) and ``POST /v1/jobs`` (bearer token,
   the same body as ``input``), alternated one after the other from one client, so both see the same
   machine; each one submits to the simulator (tasks stay Pending). p50 and p99 of each, and the difference.
2. Polling: ``--pollers`` clients (``wrk`` connections, so the clients take little of the machine's CPU
   from the server they time) each ask ``GET /v1/get_result`` about a job every ``--poll-interval`` seconds
   on average, as apps written for BFL do; meanwhile the bench completes tasks of those jobs and sends their
   signed Ready callbacks, 2 at a time, timing each acknowledgement (the workers store the images, the
   pollers see Ready). Baseline: the same, right after, with fluxhook's own ``GET /v1/jobs/{id}`` on jobs
   of their own.
3. The same two reads timed inside one process (no network, no competing client): their own cost.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import requests

from devtools.processes import require_tools
from fluxhook.store.keys import KEYS

from .common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    complete_and_sample,
    fetch,
    fmt,
    loadavg,
    log,
    percentile,
    print_report,
    send_ready_callback,
    thread_map,
    wrk,
)

TARGET_EXTRA_P50_MS = 2.0
TARGET_POLL_P99_MS = 10.0
TARGET_ACK_P99_MS = 100.0
WRK_THREADS = 2
POLLERS_LUA = Path(__file__).with_name("pollers.lua")
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


def service_times(stack: BenchStack, job_ids: list[str], count: int) -> dict[str, list[float]]:
    """Each read's time inside one process (Flask's test client on the stack's Redis, no network, no other
    client): what a request costs the web process, apart from waiting for a CPU on a busy machine."""
    from fluxhook.core.config import Config
    from receiver import create_app

    client = create_app(Config.from_env(stack.env)).test_client()
    headers = {"x-key": stack.env["API_TOKENS"].split(",")[0]}
    times: dict[str, list[float]] = {"compat": [], "own": []}
    for n in range(count):
        job_id = job_ids[n % len(job_ids)]
        for name, path in (("compat", f"/v1/get_result?id={job_id}"), ("own", f"/v1/jobs/{job_id}")):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            response.close()  # gives the request's work permit back
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def create_compat_jobs(stack: BenchStack, count: int) -> list[BenchJob]:
    token = stack.env["API_TOKENS"].split(",")[0]

    def create(session: requests.Session, n: int) -> BenchJob:
        response = session.post(f"{stack.base_url}/v1/flux-2-pro", headers={"x-key": token}, timeout=30,
                                json={"prompt": f"[pending] [drop] bench poller {n}"})
        response.raise_for_status()
        job_id = response.json()["id"]
        return BenchJob(job_id, stack.redis().hget(KEYS.job(job_id), "bfl_id"))

    return thread_map(create, range(count), 6)


def polling(stack: BenchStack, jobs: list[BenchJob], path: str, interval: float, seconds: float,
            callbacks: int) -> dict:
    """``len(jobs)`` wrk connections, each asking ``path`` (``{id}`` filled in with a job's id) about every
    ``interval`` s for ``seconds``; meanwhile, once they are all at it, signed Ready callbacks for the first
    ``callbacks`` jobs (their tasks completed and images rendered before) are sent one by one, spread evenly
    over the window, each acknowledgement timed, and the workers download and store those images."""
    paths = stack.var_dir / f"poll-{jobs[0].job_id}.txt"
    paths.write_text("".join(path.format(id=job.job_id) + "\n" for job in jobs))
    token = stack.env["API_TOKENS"].split(",")[0]

    def prepare(session: requests.Session, job: BenchJob) -> tuple[BenchJob, str]:
        sample = complete_and_sample(session, stack.sim_base, job.bfl_id)
        fetch(session, sample)  # the simulator renders an image on its first fetch: BFL's work, not on this machine
        return job, sample

    ready = thread_map(prepare, jobs[:callbacks], 2)
    figures: dict = {}
    poller = threading.Thread(target=lambda: figures.update(
        wrk(stack.base_url, POLLERS_LUA, seconds, len(jobs), WRK_THREADS, str(paths), str(int(interval * 1000)),
            token)))
    started = time.time()
    poller.start()
    time.sleep(2.0)  # every connection has asked once before the first callback

    # Spread over the window, as tasks finish at BFL: its 24 tasks in flight, each taking seconds, call back a
    # few times a second at most, never all at once.
    spacing = (seconds - 4.0) / max(1, len(ready))
    session = requests.Session()
    acks = []
    for n, job_and_sample in enumerate(ready):
        time.sleep(max(0.0, started + 2.0 + n * spacing - time.time()))
        acks.append(send_ready_callback(session, stack, *job_and_sample))
    callbacks_in_window = time.time() - started <= seconds
    poller.join()
    return {**figures, "acks": acks, "callbacks_in_window": callbacks_in_window}


def run(args) -> Section:
    section = Section("BFL-compatible API")
    # The callbacks arrive here, as BFL's would: no job falls due for the fallback poll within the run (with the
    # default 45 s, the first step's jobs would all be polled during the second polling phase, its baseline's).
    with BenchStack("compat", log_level=args.log_level, CALLBACK_GRACE_SECONDS="3600") as stack:
        stack.start(workers=2)
        stack.sim_settings(max_active=100_000, url_ttl=7200)
        log(f"compat: {args.submissions} submissions through each route, alternated")
        times = submissions(stack, args.submissions)
        compat50, jobs50 = percentile(times["compat"], 50), percentile(times["jobs"], 50)
        section.rows += [
            Row("POST /v1/{model} vs POST /v1/jobs, p50 ms", fmt(compat50, 2), fmt(jobs50, 2),
                f"{compat50 - jobs50:+.2f} ms", f"<= +{TARGET_EXTRA_P50_MS:g} ms",
                compat50 - jobs50 <= TARGET_EXTRA_P50_MS),
            Row("POST /v1/{model} vs POST /v1/jobs, p99 ms", fmt(percentile(times["compat"], 99), 2),
                fmt(percentile(times["jobs"], 99), 2)),
        ]
        jobs = create_compat_jobs(stack, 2 * args.pollers)
        runs = {}
        for name, path, share in (("compat", "/v1/get_result?id={id}", jobs[:args.pollers]),
                                  ("own", "/v1/jobs/{id}", jobs[args.pollers:])):
            log(f"compat: {args.pollers} clients polling {path} every {args.poll_interval:g} s for {args.seconds:g} s, "
                f"{args.callbacks} callbacks meanwhile")
            runs[name] = polling(stack, share, path, args.poll_interval, args.seconds, args.callbacks)
        ours, own = runs["compat"], runs["own"]
        acks = ours["acks"]
        section.rows += [
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p99 ms", fmt(ours["p99_us"] / 1000, 2),
                fmt(own["p99_us"] / 1000, 2), fmt(ours["p99_us"] / own["p99_us"], 2),
                f"<= {TARGET_POLL_P99_MS:g}", ours["p99_us"] / 1000 <= TARGET_POLL_P99_MS),
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p50 ms", fmt(ours["p50_us"] / 1000, 2),
                fmt(own["p50_us"] / 1000, 2), fmt(ours["p50_us"] / own["p50_us"], 2)),
            Row("callback acknowledged meanwhile, p99 ms", fmt(percentile(acks, 99), 2),
                fmt(percentile(own["acks"], 99), 2), "", f"<= {TARGET_ACK_P99_MS:g}",
                percentile(acks, 99) <= TARGET_ACK_P99_MS),
            Row("callback acknowledged meanwhile, p50 ms", fmt(percentile(acks, 50), 2),
                fmt(percentile(own["acks"], 50), 2)),
        ]
        log("compat: the reads' own cost, in one process")
        inside = service_times(stack, [job.job_id for job in jobs], args.service_reads)
        for pct in (50, 99):
            ours_in, own_in = percentile(inside["compat"], pct), percentile(inside["own"], pct)
            section.rows.append(Row(f"get_result vs GET /v1/jobs/{{id}}, in-process, p{pct} ms", fmt(ours_in, 2),
                                    fmt(own_in, 2), fmt(ours_in / own_in, 2)))
        section.notes += [
            "submission baseline: POST /v1/jobs with the same body as input, alternated with POST /v1/{model} "
            f"from one client after {WARM_UP} warm-up pairs; each submits to the simulator",
            f"polling: each route {ours['requests']} and {own['requests']} polls ({ours['rps']:.0f}/s and "
            f"{own['rps']:.0f}/s) from {args.pollers} wrk connections, {ours['done_answers']} and "
            f"{own['done_answers']} answers saying done, {ours['non2xx'] + own['non2xx']} not 2xx, "
            f"{ours['socket_errors'] + own['socket_errors']} socket errors; {len(acks)} callbacks per route, "
            f"{'all' if ours['callbacks_in_window'] and own['callbacks_in_window'] else 'NOT all'} within the polling window",
            f"load average at the end: {loadavg()} (2 cores)",
        ]
        return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compat", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=300, help="submissions through each route")
    parser.add_argument("--pollers", type=int, default=200, help="clients polling get_result")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="each poller's interval, s")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the pollers poll")
    parser.add_argument("--callbacks", type=int, default=30, help="Ready callbacks sent while they poll")
    parser.add_argument("--service-reads", type=int, default=2000, help="reads of each route timed in-process")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    require_tools("bench-compat", "wrk")
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
