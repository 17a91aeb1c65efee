"""Benchmark 5, replication: what REDIS_MIN_REPLICAS=1 adds to an answer, beside the default 0.

    .venv/bin/python -m bench.replication [--quick] [--reps 3] [--jobs 300]

A real primary redis-server and a real replica of it (``REPLICAOF``) on 127.0.0.1: no relay, no
added delay. Two of the Procfile's web processes (gunicorn, each with its own BFL simulator, no
worker) use that primary, each in a database of its own: one with REDIS_MIN_REPLICAS=0, one with
1 (REDIS_WAIT_MS at its default). Per repetition, one client per setting sends ``--jobs``
submissions (``POST /v1/jobs``: real jobs at the simulator, ``[pending] [drop]`` so their tasks stay
Pending and never call back), then the signed Ready callback of each of those jobs (as the ingest
bench sends them); one request at a time, the two settings taking turns request by request. Each
figure is the HTTP round trip until the answer, on keep-alive connections. Beside them, straight
to the primary: ``WAIT 1 500`` right after a write, fluxhook's whole confirmation
(``fluxhook.store.replication.Replication.confirm``) and a PING for scale.

With 1, an answer is a 202 / 200 only once the replica confirmed the request's writes; a 503
``not_replicated`` means it did not within REDIS_WAIT_MS. Such answers are counted, shown, and
left out of the latencies. Not part of the test suite; it prints a table and changes nothing
outside temporary directories.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import redis
import requests

from devtools.processes import RedisServer, wait_until
from fluxhook.store.replication import Replication

from .common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    elapsed_ms,
    exit_on_sigterm,
    fmt,
    in_turn,
    loadavg,
    log,
    median_of_reps,
    percentile,
    print_report,
    read_jobs,
    timed_ready_callback,
)

SETTINGS = (0, 1)
JOBS, QUICK_JOBS = 300, 100
WARM_UP = 20
WAIT_SAMPLES = 500
FIGURES = (("sub_p50", "submission POST /v1/jobs -> 202 p50"), ("sub_p99", "submission POST /v1/jobs -> 202 p99"),
           ("bfl_p50", "submission sent -> BFL accepted it p50"),
           ("ack_p50", "callback acknowledged -> 200 p50"), ("ack_p99", "callback acknowledged -> 200 p99"))


def start_primary_and_replica(directory: Path) -> tuple[RedisServer, RedisServer]:
    servers = []
    for name in ("primary", "replica"):
        (directory / name).mkdir(parents=True)
        servers.append(RedisServer(directory=str(directory / name)).start())
    primary, replica = servers
    link = redis.Redis(port=replica.port, decode_responses=True)
    link.replicaof("127.0.0.1", primary.port)
    wait_until(lambda: link.info("replication").get("master_link_status") == "up", timeout=30, interval=0.05,
               message="the replica's link to the primary")
    return primary, replica


class Setting:
    """One web process and one worker on the primary with REDIS_MIN_REPLICAS=``replicas``; clients of it."""

    def __init__(self, replicas: int, redis_url: str, log_level: str):
        self.replicas = replicas
        self.stack = BenchStack(f"replication-{replicas}", log_level=log_level, REDIS_URL=redis_url,
                                REDIS_MIN_REPLICAS=str(replicas))
        # The client's (with its bearer token, made at start) and BFL's (none), as in production.
        self.api = self.bfl = requests.Session()
        self.bfl.trust_env = False
        self.withheld = 0

    def start(self) -> None:
        # With replicas required, a worker sends each new job to BFL (after the request's WAIT).
        self.stack.start(workers=1)
        self.stack.sim_settings(max_active=100_000)
        self.api = self.stack.api_session()
        self.api.trust_env = False

    def accepted(self, response: requests.Response, expected: int) -> bool:
        if response.status_code == expected:
            return True
        if response.status_code == 503 and "not_replicated" in response.text:
            self.withheld += 1
            return False
        raise RuntimeError(f"REDIS_MIN_REPLICAS={self.replicas}: {response.request.method} answered "
                           f"{response.status_code}: {response.text[:200]}")

    def submit(self, prompt: str, sent: dict[str, float], times: list[float]) -> None:
        body = {"model": "flux-2-pro", "input": {"prompt": f"[pending] [drop] {prompt}"}}
        sent_at, started = time.time(), time.perf_counter()
        response = self.api.post(self.stack.base_url + "/v1/jobs", json=body, timeout=30)
        took = elapsed_ms(started)
        if self.accepted(response, 202):
            sent[response.json()["id"]] = sent_at
            times.append(took)

    def at_bfl(self, sent: dict[str, float]) -> tuple[list[BenchJob], list[float]]:
        """Once BFL has every job (with 1 a worker sends them): the jobs, and each one's time from the
        POST being sent to BFL's acceptance (its record's submitted_at; wall clocks of this machine)."""
        db, ids = self.stack.redis(), list(sent)

        def records() -> list[dict] | None:
            found = read_jobs(db, ids, ("status", "bfl_id", "submitted_at"))
            return found if all(r["submitted_at"] for r in found) else None

        found = wait_until(records, timeout=60, interval=0.05, message=f"{len(ids)} jobs to reach the simulator")
        jobs = [BenchJob(job_id, r["bfl_id"]) for job_id, r in zip(ids, found, strict=True)]
        return jobs, [(float(r["submitted_at"]) - sent[job_id]) * 1000 for job_id, r in zip(ids, found, strict=True)]

    def send_callback(self, job: BenchJob, times: list[float]) -> None:
        # No worker runs by then, so the callback's image is never fetched.
        response, took = timed_ready_callback(self.bfl, self.stack, job)
        if self.accepted(response, 200):
            times.append(took)


def submissions(settings: list[Setting], count: int, tag: str) -> tuple[dict[str, float], dict[int, list[BenchJob]]]:
    """``count`` submissions to each setting in turn; their figures and, per setting, the jobs made."""
    sent: dict[int, dict[str, float]] = {setting.replicas: {} for setting in settings}
    times: dict[int, list[float]] = {setting.replicas: [] for setting in settings}
    for n in range(count):
        for setting in in_turn(settings, n):
            setting.submit(f"{tag} {n}", sent[setting.replicas], times[setting.replicas])
    figures, jobs = {}, {}
    for setting in settings:
        jobs[setting.replicas], to_bfl = setting.at_bfl(sent[setting.replicas])
        r, took = setting.replicas, times[setting.replicas]
        figures.update({f"sub_p50_{r}": percentile(took, 50), f"sub_p99_{r}": percentile(took, 99),
                        f"bfl_p50_{r}": percentile(to_bfl, 50)})
    return figures, jobs


def callbacks(settings: list[Setting], jobs: dict[int, list[BenchJob]]) -> dict[str, float]:
    """The signed Ready callback of each job, the settings in turn; their figures."""
    times: dict[int, list[float]] = {setting.replicas: [] for setting in settings}
    for n in range(max(map(len, jobs.values()))):
        for setting in in_turn(settings, n):
            if n < len(jobs[setting.replicas]):  # fewer if some submissions were withheld
                setting.send_callback(jobs[setting.replicas][n], times[setting.replicas])
    figures = {}
    for setting in settings:
        took = times[setting.replicas]
        figures.update({f"ack_p50_{setting.replicas}": percentile(took, 50),
                        f"ack_p99_{setting.replicas}": percentile(took, 99)})
    return figures


def redis_costs(url: str, samples: int) -> dict[str, float]:
    """Straight to the primary: ``WAIT 1 500`` right after a write, fluxhook's whole confirmation
    (``Replication.confirm``: marker, WAIT and the primary's id in one round trip) and a PING for scale."""
    db = redis.Redis.from_url(url, decode_responses=True)
    replication = Replication(db, replicas=1, wait_ms=500)
    primary_id = replication.primary()
    waits, confirms, pings, short = [], [], [], 0
    for n in range(samples):
        db.set("bench:replication:probe", n)
        started = time.perf_counter()
        short += db.wait(1, 500) < 1
        waits.append(elapsed_ms(started))
        db.set("bench:replication:probe", n)
        started = time.perf_counter()
        replication.confirm(primary_id)
        confirms.append(elapsed_ms(started))
        started = time.perf_counter()
        db.ping()
        pings.append(elapsed_ms(started))
    return {"wait_p50": percentile(waits, 50), "confirm_p50": percentile(confirms, 50),
            "ping_p50": percentile(pings, 50), "wait_short": short}


def run(args) -> tuple[Section, None]:
    count = args.replication_jobs
    directory = Path(tempfile.mkdtemp(prefix="fluxhook-bench-replication-"))
    load_start = loadavg()
    servers: list[RedisServer] = []
    settings: list[Setting] = []
    try:
        servers += start_primary_and_replica(directory)
        base = servers[0].url.rsplit("/", 1)[0]
        # A database each (and one for the probes), so none sees the others' keys; WAIT covers the whole primary.
        settings = [Setting(replicas, f"{base}/{replicas}", args.log_level) for replicas in SETTINGS]
        for setting in settings:
            setting.start()
        log("replication: warm-up submissions")
        _, warm_jobs = submissions(settings, WARM_UP, "warm-up")
        reps: list[dict[str, float]] = []
        rep_jobs = []
        for rep in range(args.reps):
            log(f"replication rep {rep + 1}/{args.reps}: {count} submissions per setting")
            figures, jobs = submissions(settings, count, f"rep {rep}")
            reps.append(figures)
            rep_jobs.append(jobs)
        # Callbacks with no worker running, as in the ingest bench: the downloads they queue stay queued,
        # so no download takes CPU from the web processes meanwhile.
        for setting in settings:
            setting.stack.stop_workers()
        log("replication: warm-up callbacks")
        callbacks(settings, warm_jobs)
        for rep, (figures, jobs) in enumerate(zip(reps, rep_jobs, strict=True)):
            log(f"replication rep {rep + 1}/{args.reps}: {len(jobs[0])} and {len(jobs[1])} callbacks")
            figures.update(callbacks(settings, jobs))
            figures.update(redis_costs(f"{base}/{len(SETTINGS)}", WAIT_SAMPLES))
            for key, _ in FIGURES:
                figures[f"{key}_diff"] = figures[f"{key}_1"] - figures[f"{key}_0"]
            log(f"replication rep {rep + 1}: submission p50 {figures['sub_p50_0']:.2f} / {figures['sub_p50_1']:.2f} "
                f"ms, callback p50 {figures['ack_p50_0']:.2f} / {figures['ack_p50_1']:.2f} ms, p99 "
                f"{figures['ack_p99_0']:.2f} / {figures['ack_p99_1']:.2f} ms (REDIS_MIN_REPLICAS 0 / 1)")
        return section(reps, count, {setting.replicas: setting.withheld for setting in settings}, load_start), None
    finally:
        for setting in settings:
            setting.stack.stop()
            setting.stack.cleanup()
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def section(reps: list[dict[str, float]], count: int, withheld: dict[int, int], load_start: str) -> Section:
    m = median_of_reps(reps)
    sec = Section("5. replication, REDIS_MIN_REPLICAS=1 vs 0")
    for key, label in FIGURES:
        sec.rows += [Row(f"{label}, ms", fmt(m[f"{key}_1"], 2), fmt(m[f"{key}_0"], 2),
                         fmt(m[f"{key}_1"] / m[f"{key}_0"], 2)),
                     Row("  added by REDIS_MIN_REPLICAS=1, ms", fmt(m[f"{key}_diff"], 2))]
    sec.rows += [
        Row("WAIT 1 500 after a write, p50 ms (vs PING)", fmt(m["wait_p50"], 3), fmt(m["ping_p50"], 3),
            fmt(m["wait_p50"] / m["ping_p50"], 2)),
        Row("fluxhook's confirmation alone, p50 ms (vs PING)", fmt(m["confirm_p50"], 3), fmt(m["ping_p50"], 3),
            fmt(m["confirm_p50"] / m["ping_p50"], 2)),
        Row("answers withheld, 503 not_replicated (vs with 0)", str(withheld[1]), str(withheld[0]), "", "0",
            withheld[1] == 0),
    ]
    sec.notes = [
        "the fluxhook column is REDIS_MIN_REPLICAS=1 (an answer only after one WAIT confirmed a replica has the "
        "request's writes), the baseline the default 0; information, no target: the difference is the price of "
        "durability.",
        "with 1 a new job reaches BFL through a worker, after the request's WAIT; with 0 the request sends it "
        "itself. So with 1 the 202 comes before BFL has the job, and its price shows in 'sent -> BFL accepted it' "
        "(the POST being sent to the record's submitted_at, wall clocks of this machine), not in the 202.",
        f"{count} submissions per setting and rep (one worker per setting running), then their callbacks (no "
        f"worker running: the downloads stay queued, as in the ingest bench); one request at a time on keep-alive "
        f"connections, the two settings taking turns request by request; {len(reps)} rep(s), medians of per-rep "
        f"percentiles; 'added' is the median of the per-rep differences (1 minus 0), so it may differ a little "
        f"from the difference of the two medians shown.",
        "a primary and a replica redis-server on 127.0.0.1 (AOF on both), no relay, no added delay: the least "
        "REDIS_MIN_REPLICAS=1 can cost; a replica across a network adds its round trip to every such answer.",
        "per rep p50, ms (submission 0 / 1, callback 0 / 1): " + "; ".join(
            f"{r['sub_p50_0']:.2f} / {r['sub_p50_1']:.2f}, {r['ack_p50_0']:.2f} / {r['ack_p50_1']:.2f}" for r in reps),
        f"straight to the primary, {WAIT_SAMPLES} times a rep: WAIT 1 500 after a SET; fluxhook's "
        f"Replication.confirm (marker INCR, WAIT, INFO replication in one pipeline) after a SET; a PING. WAIT "
        f"answered with no replica {sum(r['wait_short'] for r in reps):.0f} time(s) of {len(reps) * WAIT_SAMPLES}. "
        f"Answers withheld are counted over the whole run, warm-up included, and left out of the latencies.",
        f"load average at start: {load_start}; at end: {loadavg()}.",
    ]
    return sec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replication", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"1 rep of {QUICK_JOBS} jobs (a smoke test)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    parser.add_argument("--jobs", type=int, dest="replication_jobs",
                        help=f"submissions and callbacks per setting and rep (default {JOBS}; --quick: {QUICK_JOBS})")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the web processes (default: fluxhook's own)")
    args = parser.parse_args(argv)
    args.reps = args.reps or (1 if args.quick else 3)
    args.replication_jobs = args.replication_jobs or (QUICK_JOBS if args.quick else JOBS)
    exit_on_sigterm()
    section, _ = run(args)
    print_report([section], spaced=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
