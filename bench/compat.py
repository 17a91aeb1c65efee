"""Benchmark: the BFL-compatible API beside fluxhook's own, in one run on one stack.

    .venv/bin/python -m bench.compat [--submissions 300] [--pollers 200] [--poll-interval 0.5] [--seconds 20]

1. Submission: ``POST /v1/flux-2-pro`` (``x-key``, the body BFL would get) and ``POST /v1/jobs`` (bearer token,
   the same body as ``input``), alternated one after the other from one client, so both see the same
   machine; each one submits to the simulator (tasks stay Pending). p50 and p99 of each, and the difference.
2. Polling: ``--pollers`` clients (in 4 processes, so the clients' own interpreter lock does not time
   them) each poll ``GET /v1/get_result`` for a job of its own every ``--poll-interval`` seconds, as apps
   written for BFL do; meanwhile the bench completes tasks of those jobs and sends their signed Ready
   callbacks, 2 at a time, timing each acknowledgement (the workers store the images, the pollers see Ready).
   Baseline: each client alternates ``get_result`` with fluxhook's own ``GET /v1/jobs/{id}`` of the same job,
   so both routes are timed under the same load at the same moments.
3. The same two reads timed inside one process (no network, no competing client): their own cost.
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import multiprocessing
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
    fetch,
    fmt,
    loadavg,
    log,
    percentile,
    print_notes,
    print_table,
    signed_callback,
    thread_map,
)

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
          out) -> None:
    """One client process: a thread per job, each polling its job every ``interval`` s until ``until``, through
    ``get_result`` and fluxhook's own ``GET /v1/jobs/{id}`` in turn (so both see the same load at once)."""
    took: dict[str, list[float]] = {"compat": [], "own": []}
    done = []
    lock = threading.Lock()

    def client(job_id: str, offset: float) -> None:
        session = requests.Session()
        session.trust_env = False
        urls = (("compat", f"{base_url}/v1/get_result?id={job_id}"), ("own", f"{base_url}/v1/jobs/{job_id}"))
        mine: dict[str, list[float]] = {"compat": [], "own": []}
        seen_done, n = False, int(offset * 1000)
        next_at = start_at + offset
        while True:
            time.sleep(max(0.0, next_at - time.time()))
            if time.time() >= until:
                break
            name, url = urls[n % 2]
            ms, response = _timed(session, "GET", url, headers={"x-key": token})
            mine[name].append(ms)
            seen_done = seen_done or response.json()["status"] in ("Ready", "stored")
            next_at += interval
            n += 1
        with lock:
            for name, values in mine.items():
                took[name].extend(values)
            done.append(seen_done)

    threads = [threading.Thread(target=client, args=(job_id, interval * i / len(job_ids)), daemon=True)
               for i, job_id in enumerate(job_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((took, sum(done)))


def service_times(stack: BenchStack, job_ids: list[str], count: int) -> dict[str, list[float]]:
    """Each read's time inside one process (Flask's test client on the stack's Redis, no network, no other
    client): what a request costs the web process, apart from waiting for a CPU on a busy machine."""
    from fluxhook.config import Config
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


def polling(stack: BenchStack, pollers: int, interval: float, seconds: float, callbacks: int) -> dict:
    jobs = create_compat_jobs(stack, pollers)
    token = stack.env["API_TOKENS"].split(",")[0]
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 1.0
    until = start_at + seconds
    shares = [[j.job_id for j in jobs[i::CLIENT_PROCESSES]] for i in range(CLIENT_PROCESSES)]
    processes = [context.Process(target=_poll,
                                 args=(stack.base_url, token, share, interval, start_at, until, out))
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
    polls: dict[str, list[float]] = {"compat": [], "own": []}
    ready = 0
    for _ in processes:
        took, seen = out.get(timeout=seconds + 120)
        for name, values in took.items():
            polls[name] += values
        ready += seen
    for process in processes:
        process.join(timeout=30)
    return {"polls": polls, "acks": acks, "ready": ready, "rate": sum(map(len, polls.values())) / seconds,
            "job_ids": [job.job_id for job in jobs],
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
        log(f"compat: {args.pollers} pollers every {args.poll_interval:g} s for {args.seconds:g} s, "
            f"{args.callbacks} callbacks meanwhile")
        run = polling(stack, args.pollers, args.poll_interval, args.seconds, args.callbacks)
        ours, own, acks = run["polls"]["compat"], run["polls"]["own"], run["acks"]
        section.rows += [
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p99 ms", fmt(percentile(ours, 99), 2),
                fmt(percentile(own, 99), 2), fmt(percentile(ours, 99) / percentile(own, 99), 2),
                f"<= {TARGET_POLL_P99_MS:g}", percentile(ours, 99) <= TARGET_POLL_P99_MS),
            Row(f"get_result vs GET /v1/jobs/{{id}}, {args.pollers} pollers, p50 ms", fmt(percentile(ours, 50), 2),
                fmt(percentile(own, 50), 2), fmt(percentile(ours, 50) / percentile(own, 50), 2)),
            Row("callback acknowledged meanwhile, p99 ms", fmt(percentile(acks, 99), 2), "", "",
                f"<= {TARGET_ACK_P99_MS:g}", percentile(acks, 99) <= TARGET_ACK_P99_MS),
            Row("callback acknowledged meanwhile, p50 ms", fmt(percentile(acks, 50), 2)),
        ]
        log("compat: the reads' own cost, in one process")
        inside = service_times(stack, run["job_ids"], args.service_reads)
        for pct in (50, 99):
            ours_in, own_in = percentile(inside["compat"], pct), percentile(inside["own"], pct)
            section.rows.append(Row(f"get_result vs GET /v1/jobs/{{id}}, in-process, p{pct} ms", fmt(ours_in, 2),
                                    fmt(own_in, 2), fmt(ours_in / own_in, 2)))
        section.notes += [
            "submission baseline: POST /v1/jobs with the same body as input, alternated with POST /v1/{model} "
            f"from one client after {WARM_UP} warm-up pairs; each submits to the simulator",
            f"polling: {len(ours) + len(own)} polls ({run['rate']:.0f}/s) from {CLIENT_PROCESSES} client processes, "
            "each client alternating get_result and GET /v1/jobs/{id} (the baseline) for its job; "
            f"{run['ready']} clients saw their job done; {len(acks)} callbacks, "
            f"{'all' if run['callbacks_in_window'] else 'NOT all'} within the polling window",
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
    parser.add_argument("--callbacks", type=int, default=30, help="Ready callbacks sent while they poll")
    parser.add_argument("--service-reads", type=int, default=2000, help="reads of each route timed in-process")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    section = run(args)
    print_table([section])
    print_notes([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
