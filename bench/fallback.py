"""Benchmark of fallback polling: polls per job, lost callback → stored, and the cost of an idle sweep.

Runs the Procfile's web and worker(s) against an embedded Redis and the BFL simulator and
submits jobs through ``POST /v1/jobs``. Most tasks complete after the simulator's fixed
delay and call back; the lost-callback share is submitted with ``[pending] [drop]`` and
completed by this script at a time spread uniformly over ``--spread`` seconds after
submission (the simulator's delay is fixed), so their polls exercise the whole schedule.
The idle sweep is then timed in another Redis database holding ``--tracked`` active jobs
none of which is due.

    .venv/bin/python -m bench.fallback [--jobs 10000] [--lost 0.1] [--grace 45] [--rate 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

from devtools.processes import free_port, start_process, stop_process
from devtools.stack import Stack, procfile_commands
from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.sweep import sweep
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from fluxhook.store.queues import task_queue

from .common import exit_on_sigterm

# The highest BFL_MAX_ACTIVE the configuration accepts: slots must never make a job wait here.
MAX_ACTIVE = 10_000
# The targets.
TARGET_LOST_POLLS = 4.0
TARGET_SWEEP_MS = 5.0
LOST_WINDOW = 120.0  # "a lost-callback job that completes within 2 minutes"
# A Redis database of the embedded server that the running stack does not use.
SWEEP_DB = 5
PROGRESS_EVERY = 10.0


@dataclass(frozen=True)
class Submitted:
    """A job as ``POST /v1/jobs`` answered it."""

    job_id: str
    bfl_id: str
    lost: bool


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


class Completer:
    """Completes planned simulator tasks at their times, from one background thread."""

    def __init__(self, sim_base: str):
        self.sim_base = sim_base
        self.plan: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="completer", daemon=True)
        self.thread.start()

    def add(self, when: float, bfl_id: str) -> None:
        with self.lock:
            heapq.heappush(self.plan, (when, bfl_id))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _due(self, now: float) -> list[str]:
        with self.lock:
            due = []
            while self.plan and self.plan[0][0] <= now:
                due.append(heapq.heappop(self.plan)[1])
            return due

    def _run(self) -> None:
        session = requests.Session()
        try:
            # The simulator stamps completed_at itself, so a late wake-up here does not skew the figures.
            while not self.stopped.wait(0.05):
                for bfl_id in self._due(time.time()):
                    response = session.post(f"{self.sim_base}/_sim/tasks/{bfl_id}/complete",
                                            json={"outcome": "ready"}, timeout=10)
                    response.raise_for_status()
        except BaseException as exc:  # the main thread re-raises it
            self.error = exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--lost", type=float, default=0.1, help="share of jobs whose callback is lost")
    parser.add_argument("--grace", type=int, default=45, help="CALLBACK_GRACE_SECONDS")
    parser.add_argument("--spread", type=float, default=LOST_WINDOW,
                        help="lost-callback tasks complete uniformly within this many seconds of submission")
    parser.add_argument("--task-delay", type=float, default=2.0, help="seconds until a callback task completes")
    parser.add_argument("--workers", type=int, default=2, help="python -m worker processes")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="jobs submitted per second (0: as fast as the submitting threads go)")
    parser.add_argument("--submitters", type=int, default=6, help="threads submitting jobs")
    parser.add_argument("--tracked", type=int, default=10_000, help="active jobs for the idle-sweep timing")
    parser.add_argument("--sweeps", type=int, default=200, help="idle sweeps timed")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting after this many seconds")
    args = parser.parse_args()
    exit_on_sigterm()

    var_dir = Path(tempfile.mkdtemp(prefix="fluxhook-bench-"))
    print(f"logs in {var_dir}", flush=True)
    port = free_port()
    # GUNICORN_CMD_ARGS outranks the config file's 0.0.0.0: the benchmark listens on loopback only.
    stack = Stack(env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "PORT": str(port),
                       "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
                       "CALLBACK_GRACE_SECONDS": str(args.grace), "BFL_MAX_ACTIVE": str(MAX_ACTIVE)},
                  var_dir=var_dir)
    extra_workers = []
    try:
        stack.prepare()
        stack.env["PUBLIC_BASE_URL"] = stack.base_url
        stack.start()
        extra_workers = start_extra_workers(stack, args.workers - 1)
        run_figures = run(stack, args)
        sweep_ms = time_idle_sweeps(stack.env, args.tracked, args.sweeps)
    finally:
        for process in extra_workers:
            stop_process(process)
        stack.stop()
    report(args, run_figures, sweep_ms)
    report_logs(var_dir)


def start_extra_workers(stack: Stack, count: int) -> list:
    """More of the Procfile's worker (Stack starts one): every job means a download on RQ."""
    command = procfile_commands()["worker"]
    return [start_process(["sh", "-c", "exec " + command], stack.env,
                          log_path=str(stack.var_dir / f"worker-{n + 2}.log"))
            for n in range(count)]


def run(stack: Stack, args: argparse.Namespace) -> dict:
    """Submit the jobs, wait until all are terminal, and gather per-job figures."""
    env = stack.env
    sim_base = env["BFL_API_BASE"]
    requests.post(f"{sim_base}/_sim/settings", timeout=10,
                  json={"max_active": args.jobs + 1, "task_delay": args.task_delay}).raise_for_status()
    db = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
    rng = random.Random(1)
    lost = set(rng.sample(range(args.jobs), round(args.jobs * args.lost)))
    # Drawn up front, in order, so a run is reproducible whatever the threads' interleaving.
    offsets = [rng.uniform(1.0, args.spread) for _ in range(args.jobs)]
    token = env["API_TOKENS"].split(",")[0]
    sessions = threading.local()
    completer = Completer(sim_base)

    def submit(n: int, not_before: float) -> Submitted:
        time.sleep(max(0.0, not_before - time.monotonic()))
        if not hasattr(sessions, "api"):
            sessions.api = requests.Session()
            sessions.api.headers["Authorization"] = f"Bearer {token}"
        prompt = f"[pending] [drop] bench {n}" if n in lost else f"bench {n}"
        response = sessions.api.post(stack.base_url + "/v1/jobs", timeout=30,
                                     json={"model": "flux-2-pro", "input": {"prompt": prompt}})
        assert response.status_code == 202, response.text
        job = response.json()
        # Far fewer than BFL_MAX_ACTIVE are ever in flight: a job that queued would blur the figures.
        assert job["status"] == st.SUBMITTED, job
        if n in lost:
            completer.add(time.time() + offsets[n], job["bfl_id"])
        return Submitted(job["id"], job["bfl_id"], n in lost)

    pool = ThreadPoolExecutor(args.submitters)
    try:
        started = time.monotonic()
        futures = [pool.submit(submit, n, started + n / args.rate if args.rate else 0.0) for n in range(args.jobs)]
        submit_s, done_s = wait_for_terminal(db, futures, completer, started, args.timeout)
        jobs = [future.result() for future in futures]
    finally:
        pool.shutdown(cancel_futures=True)
        completer.stop()
    records = read_jobs(db, [job.job_id for job in jobs], ("status", "polls", "completed_at", "source"))
    tasks = fetch_tasks(sim_base, [job.bfl_id for job in jobs], args.submitters)
    sim_stats = requests.get(f"{sim_base}/_sim/stats", timeout=30).json()
    return {"jobs": jobs, "records": records, "tasks": tasks, "sim_stats": sim_stats,
            "submit_s": submit_s, "done_s": done_s}


def wait_for_terminal(db: redis.Redis, futures: list[Future], completer: Completer, started: float,
                      timeout: float) -> tuple[float, float]:
    """Wait until every job is submitted and terminal, printing progress; returns both times, in s."""
    queue = task_queue(db)
    submit_s, next_report = None, PROGRESS_EVERY
    while True:
        if completer.error:
            raise completer.error
        submitted = [future.result() for future in futures if future.done()]
        elapsed = time.monotonic() - started
        if submit_s is None and len(submitted) == len(futures):
            submit_s = elapsed
        counts = Counter(record["status"] for record in read_jobs(db, [s.job_id for s in submitted], ("status",)))
        terminal = sum(counts[status] for status in st.TERMINAL)
        if terminal == len(futures):
            return submit_s, elapsed
        if elapsed >= next_report:
            active = " ".join(f"{status} {counts[status]}" for status in st.ACTIVE)
            print(f"{elapsed:6.0f} s: submitted {len(submitted)}/{len(futures)}, terminal {terminal}, {active}, "
                  f"RQ queue {queue.count}", flush=True)
            next_report += PROGRESS_EVERY
        if elapsed > timeout:
            raise TimeoutError(f"after {timeout:.0f} s only {terminal} of {len(futures)} jobs are terminal: {counts}")
        time.sleep(2.0)


def read_jobs(db: redis.Redis, job_ids: list[str], fields: tuple[str, ...]) -> list[dict]:
    """Fields of many job hashes in one round trip (not one HTTP GET per job)."""
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(KEYS.job(job_id), fields)
    return [dict(zip(fields, values, strict=False)) for values in pipe.execute()]


def fetch_tasks(sim_base: str, bfl_ids: list[str], threads: int) -> dict[str, dict]:
    """The simulator's view of each task (completed_at, callback attempts), by BFL id."""
    sessions = threading.local()

    def fetch(bfl_id: str) -> dict:
        if not hasattr(sessions, "sim"):
            sessions.sim = requests.Session()
        response = sessions.sim.get(f"{sim_base}/_sim/tasks/{bfl_id}", timeout=30)
        response.raise_for_status()
        return response.json()

    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(bfl_ids, pool.map(fetch, bfl_ids), strict=False))


def time_idle_sweeps(env: dict[str, str], tracked: int, sweeps: int) -> list[float]:
    """Milliseconds per sweep over ``tracked`` active jobs none of which is due, in a database of its own."""
    url = urlsplit(env["REDIS_URL"])._replace(path=f"/{SWEEP_DB}").geturl()
    svc = build_services(Config.from_env(dict(env, REDIS_URL=url)))
    svc.redis.flushdb()
    now = time.time()
    for n in range(tracked):
        job = Job(id=new_job_id(), status=st.SUBMITTED, bfl_id=f"bench-idle-{n}", model="flux-2-pro",
                  created_at=now, updated_at=now, submitted_at=now)
        # Due times spread over the next hour, like jobs waiting for their next poll.
        svc.jobs.create(job, due=now + 600 + 3000 * n / tracked)
    assert svc.redis.zcard(KEYS.due) == tracked
    sweep(svc)  # loads the Lua scripts into Redis: a one-off, not the steady cost
    timings = []
    for _ in range(sweeps):
        started = time.perf_counter()
        result = sweep(svc)
        timings.append((time.perf_counter() - started) * 1000)
        assert (result.due, result.deadlines) == (0, 0), result
    svc.redis.flushdb()
    return timings


def report(args: argparse.Namespace, figures: dict, sweep_ms: list[float]) -> None:
    """The figures against the issue's targets, the run's parameters, and cross-checks with the simulator."""
    jobs, records, tasks = figures["jobs"], figures["records"], figures["tasks"]
    lost_count = sum(job.lost for job in jobs)
    pace = f"{args.rate:g} jobs/s" if args.rate else "as fast as possible"
    print()
    print(f"fallback polling: {args.jobs} jobs, {lost_count} with lost callbacks, submitted {pace} "
          f"by {args.submitters} threads")
    print(f"grace {args.grace} s; callback tasks complete after {args.task_delay:g} s, lost-callback tasks "
          f"uniformly within {args.spread:g} s; {args.workers} worker process(es), 1 web (gunicorn), embedded Redis")
    print(f"submitted in {figures['submit_s']:.0f} s, all terminal after {figures['done_s']:.0f} s")
    print()
    rows = poll_rows(jobs, records, tasks)
    for lost in (True, False):
        seconds = [float(record["completed_at"]) - tasks[job.bfl_id]["completed_at"]
                   for job, record in zip(jobs, records, strict=False) if job.lost == lost and record["status"] == st.STORED]
        rows += latency_rows(f"{'lost callback' if lost else 'callback jobs'}: BFL completed -> stored, s", seconds)
    sweep_name = f"sweep, {args.tracked} tracked, 0 due"
    rows += [(f"{sweep_name}: {name}, ms", f"{value:.2f}", f"< {TARGET_SWEEP_MS:g}", value < TARGET_SWEEP_MS)
             for name, value in (("p50", statistics.median(sweep_ms)), ("p95", percentile(sweep_ms, 95)))]
    # No verdict on the max: on a shared 2-core machine it measures the OS scheduler more than the sweep.
    rows.append((f"{sweep_name}: max, ms", f"{max(sweep_ms):.2f}", "", None))
    print(f"{'figure':50} {'value':>14} {'target':>8}  met")
    for name, value, target, met in rows:
        print(f"{name:50} {value:>14} {target:>8}  {'' if met is None else ('yes' if met else 'not met')}")
    print()
    statuses = Counter(record["status"] for record in records)
    sources = Counter((job.lost, record["source"]) for job, record in zip(jobs, records, strict=False))
    resent = sum(len(tasks[job.bfl_id]["callback_attempts"]) > 1 for job in jobs if not job.lost)
    sim = figures["sim_stats"]
    print("statuses: " + ", ".join(f"{status} {n}" for status, n in statuses.most_common()))
    print("sources: " + ", ".join(f"{'lost' if lost else 'callback'} jobs by {source} {n}"
                                  for (lost, source), n in sorted(sources.items(), key=str)))
    print(f"simulator: {sim['polls_total']} polls (fluxhook counted {sum(int(r['polls'] or 0) for r in records)}), "
          f"{sim['callbacks_delivered']}/{sim['callbacks_sent']} callbacks accepted, "
          f"{resent} callback tasks sent more than once, {sim['delivery_requests']} image downloads, "
          f"{sim['rejected_429']} submissions refused with 429")


def poll_rows(jobs: list[Submitted], records: list[dict], tasks: dict[str, dict]) -> list[tuple]:
    """Polls per job: all, callback jobs (target: none polled), lost-callback jobs (target: mean <= 4)."""
    polls = [int(record["polls"] or 0) for record in records]
    callback = [p for job, p in zip(jobs, polls, strict=False) if not job.lost]
    lost = [p for job, p in zip(jobs, polls, strict=False) if job.lost]
    task_seconds = {job.bfl_id: tasks[job.bfl_id]["completed_at"] - tasks[job.bfl_id]["created_at"] for job in jobs}
    window = [p for job, p in zip(jobs, polls, strict=False) if job.lost and task_seconds[job.bfl_id] <= LOST_WINDOW]
    rows = [
        ("polls per job, all jobs (mean)", f"{statistics.fmean(polls):.3f}", "", None),
        ("polls per job, callback jobs (mean)", f"{statistics.fmean(callback):.3f}" if callback else "-", "", None),
        ("callback jobs polled at least once", str(sum(p > 0 for p in callback)), "0", not any(callback)),
    ]
    if lost:
        rows += [
            ("polls per lost-callback job (mean)", f"{statistics.fmean(lost):.2f}", "", None),
            (f"  ... completing within {LOST_WINDOW:.0f} s (n={len(window)}, mean)",
             f"{statistics.fmean(window):.2f}" if window else "-", f"<= {TARGET_LOST_POLLS:g}",
             bool(window) and statistics.fmean(window) <= TARGET_LOST_POLLS),
            ("  ... min / p50 / max", f"{min(lost)} / {statistics.median(lost):g} / {max(lost)}", "", None),
        ]
    return rows


def latency_rows(name: str, values: list[float]) -> list[tuple]:
    if not values:
        return [(name, "none stored", "", None)]
    return [(f"{name} p50", f"{statistics.median(values):.1f}", "", None),
            (f"{name} p95", f"{percentile(values, 95):.1f}", "", None),
            (f"{name} max", f"{max(values):.1f}", "", None)]


def report_logs(var_dir: Path) -> None:
    """Log lines at WARNING and above (and lines that are not JSON, such as tracebacks) per process."""
    for path in sorted(var_dir.glob("*.log")):
        levels: Counter = Counter()
        for line in path.read_text(errors="replace").splitlines():
            try:
                levels[json.loads(line).get("level", "?")] += 1
            except (ValueError, AttributeError):
                levels["not JSON"] += 1
        notable = {level: n for level, n in levels.items() if level not in ("DEBUG", "INFO")}
        print(f"{path.name}: " + (", ".join(f"{n} {level}" for level, n in sorted(notable.items())) or "clean"))


if __name__ == "__main__":
    main()
