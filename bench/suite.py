"""fluxhook's benchmark suite: every figure beside its baseline, in one run, on this machine.

    .venv/bin/python -m bench.suite [--quick] [--reps 3] [--only ingest,to_stored,throughput]

1. callback ingest: the Procfile's web process vs a bare Flask endpoint, same gunicorn settings (wrk);
   the rate is information (a real account's bursts are far below it); nothing dropped is the target;
2. callback -> stored: vs the direct-download floor and BFL's naive 0.5 s poller (a target);
3. download throughput: K worker processes vs a direct download loop with K threads (information);
4. footprint: Redis per job record, RSS of web and worker, BFL calls per job (targets);
5. replication: submission and callback acknowledgement latency with REDIS_MIN_REPLICAS=1 (a real
   replica on loopback) beside the default 0; the difference is the price of durability (information).

Each benchmark runs its own stack (embedded Redis, BFL simulator, the Procfile's processes),
all on 127.0.0.1. Figures are medians of ``--reps`` repetitions (``--quick``: 1, shorter runs).
Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback

from devtools.processes import require_tools

from . import footprint
from .common import MB, Section, exit_on_sigterm, loadavg, log, print_report

BENCHES = ("ingest", "to_stored", "throughput", "replication")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 rep and shorter runs (a smoke test of the suite)")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 3; --quick: 1)")
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of web and workers (default: fluxhook's own)")
    parser.add_argument("--ingest-seconds", type=float,
                        help="wrk duration per run (default 5, which the 9,000 jobs a rep may hold last; --quick: 4)")
    parser.add_argument("--jobs", type=int, help="callback -> stored jobs per rep (default 50; --quick: 20)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="callback -> stored: callbacks in flight = worker processes = floor threads (default 2)")
    parser.add_argument("--task-delay", type=float, default=1.0, help="naive poller: seconds until a task completes")
    parser.add_argument("--image-bytes", type=int, default=1_000_000, help="callback -> stored image size")
    parser.add_argument("--files", type=int, help="throughput: files per run (default 500; --quick: 100)")
    parser.add_argument("--workers", help="throughput: worker counts, first one has the target (default: two "
                                          "per core, then one per core; --quick: two per core)")
    parser.add_argument("--replication-jobs", type=int,
                        help="replication: submissions and callbacks per setting and rep (default 300; --quick: 100)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.reps = args.reps or (1 if quick else 3)
    args.ingest_seconds = args.ingest_seconds or (4.0 if quick else 5.0)
    args.jobs = args.jobs or (20 if quick else 50)
    args.files = args.files or (100 if quick else 500)
    args.replication_jobs = args.replication_jobs or (100 if quick else 300)
    # Two worker processes per core is the README's setting (a worker mostly waits on the network and
    # the disk), so it has the target; one per core is measured beside it.
    cores = os.cpu_count() or 1
    default_workers = f"{2 * cores}" if quick else f"{2 * cores},{cores}"
    args.worker_counts = [int(n) for n in (args.workers or default_workers).split(",")]
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "ingest" in args.only:
        require_tools("bench-suite", "wrk")
    exit_on_sigterm()
    started = time.monotonic()
    load_start = loadavg()
    print(f"fluxhook benchmark suite{' (--quick: 1 rep, short runs; figures are indicative only)' if args.quick else ''}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
          f"load average at start: {load_start}")
    print(f"reps {args.reps}; ingest {args.ingest_seconds:g} s per run; callback -> stored {args.jobs} jobs x "
          f"{args.image_bytes / MB:g} MB at concurrency {args.concurrency}; throughput {args.files} files x 1-2 MB "
          f"with {', '.join(map(str, args.worker_counts))} workers; replication {args.replication_jobs} submissions "
          f"and callbacks per setting; LOG_LEVEL={args.log_level}", flush=True)

    sections: list[Section] = []
    benches: dict[str, object] = {}
    failures: list[str] = []
    for name in args.only:
        try:
            module = __import__(f"bench.{name}", fromlist=["run"])
            section, bench = module.run(args)
            sections.append(section)
            benches[name] = bench
        except Exception:  # one benchmark failing must not hide the others' figures
            failures.append(name)
            log(f"{name} FAILED:")
            traceback.print_exc()
    sections.append(footprint.section(benches.get("ingest"), benches.get("to_stored"), benches.get("throughput")))

    print_report(sections, spaced=True)
    if failures:
        print(f"FAILED benchmarks (see the tracebacks above): {', '.join(failures)}")
    print()
    print(f"load average at start: {load_start}; at end: {loadavg()}; suite took {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
