"""Benchmark: what traces cost an answer: on (OTLP/HTTP to a local collector), off (no OTEL_* setting),
and the code from before traces.

    .venv/bin/python -m bench.tracing [--quick] [--reps 3] [--jobs 300] [--before-tree PATH]

Three of the Procfile's web processes (gunicorn, each with its own Redis and BFL simulator, no worker): this tree
with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a collector this bench runs on 127.0.0.1 (an HTTP server that reads
each OTLP/HTTP protobuf export and counts its spans); this tree with no OTEL_* setting; and the tree at
``--before-tree``, a checkout of f26a65d (the last commit before traces), made with ``git worktree add`` when
missing, run with this virtual environment. Per repetition, one client per setting sends ``--jobs`` submissions
(``POST /v1/jobs``: real jobs at the simulator, ``[pending] [drop]`` so their tasks stay Pending and never call
back), then the signed Ready callback of each of those jobs; one request at a time, the settings taking turns
request by request. Each figure is the HTTP round trip until the answer, on keep-alive connections. Not part of
the test suite; it prints a table and changes nothing outside temporary directories (but the baseline checkout,
when made).
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from pathlib import Path

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devtools.processes import ROOT, free_port, require_tools
from devtools.trace_receiver import TraceReceiver

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
    timed_ready_callback,
)
from .hostile import start_web

SETTINGS = ("on", "off", "before")
BEFORE_COMMIT = "f26a65d"
BEFORE_TREE = Path(f"/tmp/fluxhook-{BEFORE_COMMIT}")
JOBS, QUICK_JOBS = 300, 100
WARM_UP = 20
FIGURES = (("sub_p50", "submission POST /v1/jobs -> 202 p50"), ("sub_p99", "submission POST /v1/jobs -> 202 p99"),
           ("ack_p50", "callback acknowledged -> 200 p50"), ("ack_p99", "callback acknowledged -> 200 p99"))


class Collector:
    """Counts the spans the web process exports (the SDK's exporter needs an answer; what a real collector does
    with them is not fluxhook's cost)."""

    def __init__(self):
        self.port = free_port()
        self.spans = 0
        self.lock = threading.Lock()
        self.receiver = TraceReceiver(self.port, self.count)

    def count(self, request: ExportTraceServiceRequest) -> None:
        spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self.lock:
            self.spans += spans

    def stop(self) -> None:
        self.receiver.stop()


class Setting:
    """One web process: traces ``name`` (on or off; ``before``: the tree from before traces); its clients."""

    def __init__(self, name: str, log_level: str, collector: Collector, tree: Path | None = None):
        self.name = name
        self.tree = tree
        traces = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}"} if name == "on" else {}
        self.stack = BenchStack(f"tracing-{name}", log_level=log_level, **traces)
        self.api = self.bfl = requests.Session()
        self.bfl.trust_env = False

    def start(self) -> None:
        start_web(self.stack, self.tree)
        self.stack.sim_settings(max_active=100_000)
        self.api = self.stack.api_session()
        self.api.trust_env = False

    def submit(self, prompt: str, jobs: list[BenchJob], times: list[float]) -> None:
        body = {"model": "flux-2-pro", "input": {"prompt": f"[pending] [drop] {prompt}"}}
        started = time.perf_counter()
        response = self.api.post(self.stack.base_url + "/v1/jobs", json=body, timeout=30)
        times.append(elapsed_ms(started))
        if response.status_code != 202 or not response.json()["bfl_id"]:
            raise RuntimeError(f"traces {self.name}: POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
        jobs.append(BenchJob(response.json()["id"], response.json()["bfl_id"]))

    def send_callback(self, job: BenchJob, times: list[float]) -> None:
        # No worker runs, so the callback's image is never fetched.
        response, took = timed_ready_callback(self.bfl, self.stack, job)
        times.append(took)
        if response.status_code != 200:
            raise RuntimeError(f"traces {self.name}: a callback answered {response.status_code}: {response.text[:200]}")


def submissions(settings: list[Setting], count: int, tag: str) -> tuple[dict[str, float], dict[str, list[BenchJob]]]:
    jobs: dict[str, list[BenchJob]] = {s.name: [] for s in settings}
    times: dict[str, list[float]] = {s.name: [] for s in settings}
    for n in range(count):
        for setting in in_turn(settings, n):
            setting.submit(f"{tag} {n}", jobs[setting.name], times[setting.name])
    figures = {}
    for name, took in times.items():
        figures.update({f"sub_p50_{name}": percentile(took, 50), f"sub_p99_{name}": percentile(took, 99)})
    return figures, jobs


def callbacks(settings: list[Setting], jobs: dict[str, list[BenchJob]]) -> dict[str, float]:
    times: dict[str, list[float]] = {s.name: [] for s in settings}
    for n in range(len(jobs[settings[0].name])):
        for setting in in_turn(settings, n):
            setting.send_callback(jobs[setting.name][n], times[setting.name])
    figures = {}
    for name, took in times.items():
        figures.update({f"ack_p50_{name}": percentile(took, 50), f"ack_p99_{name}": percentile(took, 99)})
    return figures


def run(args) -> Section:
    count = args.tracing_jobs
    load_start = loadavg()
    collector = Collector()
    settings: list[Setting] = []
    try:
        settings = [Setting(name, args.log_level, collector, args.before_tree if name == "before" else None)
                    for name in SETTINGS]
        for setting in settings:
            setting.start()
        log("tracing: warm-up")
        _, warm_jobs = submissions(settings, WARM_UP, "warm-up")
        callbacks(settings, warm_jobs)
        reps: list[dict[str, float]] = []
        for rep in range(args.reps):
            log(f"tracing rep {rep + 1}/{args.reps}: {count} submissions and callbacks per setting")
            figures, jobs = submissions(settings, count, f"rep {rep}")
            figures.update(callbacks(settings, jobs))
            for key, _ in FIGURES:
                figures[f"{key}_diff"] = figures[f"{key}_on"] - figures[f"{key}_off"]
                figures[f"{key}_unset"] = figures[f"{key}_off"] - figures[f"{key}_before"]
            reps.append(figures)
            log(f"tracing rep {rep + 1}: submission p50 {figures['sub_p50_before']:.2f} / {figures['sub_p50_off']:.2f} / "
                f"{figures['sub_p50_on']:.2f} ms, callback p50 {figures['ack_p50_before']:.2f} / "
                f"{figures['ack_p50_off']:.2f} / {figures['ack_p50_on']:.2f} ms (before traces / off / on)")
        requests_sent = (WARM_UP + count * args.reps) * 2
        # A stopping web process hands the spans it still holds to the collector before it exits.
        for setting in settings:
            setting.stack.stop()
        return section(reps, count, collector.spans, requests_sent, load_start)
    finally:
        for setting in settings:
            setting.stack.stop()
            setting.stack.cleanup()
        collector.stop()


def section(reps: list[dict[str, float]], count: int, spans: int, requests_sent: int, load_start: str) -> Section:
    m = median_of_reps(reps)
    sec = Section("traces: on (to a local collector) vs off; off vs the code before traces")
    for key, label in FIGURES:
        sec.rows += [Row(f"{label}, ms: on vs off", fmt(m[f"{key}_on"], 2), fmt(m[f"{key}_off"], 2),
                         fmt(m[f"{key}_on"] / m[f"{key}_off"], 2)),
                     Row("  added by traces on, ms", fmt(m[f"{key}_diff"], 2)),
                     Row(f"{label}, ms: off vs {BEFORE_COMMIT}", fmt(m[f"{key}_off"], 2), fmt(m[f"{key}_before"], 2),
                         fmt(m[f"{key}_off"] / m[f"{key}_before"], 2)),
                     Row("  added by the code with traces off, ms", fmt(m[f"{key}_unset"], 2))]
    sec.rows.append(Row("spans the collector received (traces on; off and before: none sent)", str(spans), "0"))
    sec.notes = [
        "on: OTEL_EXPORTER_OTLP_ENDPOINT to a collector on 127.0.0.1 (the Flask, requests and Redis "
        "instrumentations and fluxhook's job spans, exported in batches by the SDK); off: no OTEL_* setting (nothing "
        f"installed); {BEFORE_COMMIT}: the last commit before traces, same virtual environment (it also lacks the "
        "commits since that are not about traces: per-key notification secrets). Information, no target.",
        f"{count} submissions per setting and rep (sent to BFL in the request, tasks left Pending), then their Ready "
        f"callbacks (no worker running); one request at a time on keep-alive connections, the settings taking turns "
        f"request by request; {len(reps)} rep(s), medians of per-rep percentiles; 'added' is the median of the "
        f"per-rep differences. {requests_sent} requests to the traced web in all, warm-up included.",
        "per rep p50, ms (submission before / off / on, callback before / off / on): " + "; ".join(
            f"{r['sub_p50_before']:.2f} / {r['sub_p50_off']:.2f} / {r['sub_p50_on']:.2f}, "
            f"{r['ack_p50_before']:.2f} / {r['ack_p50_off']:.2f} / {r['ack_p50_on']:.2f}" for r in reps),
        f"load average at start: {load_start}; at end: {loadavg()}.",
    ]
    return sec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"1 rep of {QUICK_JOBS} jobs (a smoke test)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    parser.add_argument("--jobs", type=int, dest="tracing_jobs",
                        help=f"submissions and callbacks per setting and rep (default {JOBS}; --quick: {QUICK_JOBS})")
    parser.add_argument("--before-tree", type=Path, default=BEFORE_TREE,
                        help=f"checkout of the code before traces (default {BEFORE_TREE}; made when missing)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the web processes (default: fluxhook's own)")
    args = parser.parse_args(argv)
    args.reps = args.reps or (1 if args.quick else 3)
    args.tracing_jobs = args.tracing_jobs or (QUICK_JOBS if args.quick else JOBS)
    if not (args.before_tree / "Procfile").exists():
        require_tools("bench-tracing", "git")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(args.before_tree), BEFORE_COMMIT],
                       check=True, timeout=120)
    exit_on_sigterm()
    print_report([run(args)], spaced=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
