"""Benchmark: ``GET /v1/usage`` over a year, beside a naive scan of job records, in one run.

    .venv/bin/python -m bench.usage [--jobs 1000000] [--models 6] [--records 100000] [--requests 100]

fluxhook: the day counters of ``--jobs`` jobs spread over 366 UTC days and ``--models`` models,
written with fluxhook's own effects (``CountUsage``, what the transitions add), then
``GET /v1/usage`` for all 366 days, ``--requests`` times, through the Procfile's web process
(gunicorn) with its bearer token: the time to the whole answer, measured by the client.
Baseline: what a service without counters does, aggregating job records per day and model; it
scans ``--records`` job hashes (SCAN, then HMGET of model, submitted_at and cost, 1,000 per round
trip) in another database of the same Redis, and scales the time to ``--jobs`` (it grows with the
number of records). Not part of the test suite; it prints a table and changes nothing outside
temporary directories.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

import redis

from fluxhook.credits import accounting
from fluxhook.store.effects import CountUsage, Effects
from fluxhook.store.keys import KEYS

from .common import BenchStack, Row, Section, fmt, log, percentile, print_report

TARGET_MS = 50.0
DAYS = 366
MODELS = ("flux-2-pro", "flux-2-max", "flux-2-flex", "flux-2-klein-4b", "flux-kontext-max", "flux-pro-1.1",
          "flux-2-klein-9b", "flux-3-video")
PRICES = {"flux-2-pro": 3.0, "flux-2-max": 7.0, "flux-2-flex": 5.0, "flux-2-klein-4b": 1.4, "flux-kontext-max": 8.0,
          "flux-pro-1.1": 4.0, "flux-2-klein-9b": 1.5, "flux-3-video": 40.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.usage", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs the counters count (default 1,000,000)")
    parser.add_argument("--models", type=int, default=6, help=f"models they spread over (1-{len(MODELS)}, default 6)")
    parser.add_argument("--records", type=int, default=100_000,
                        help="job records the baseline scans (default 100,000; its time is scaled to --jobs)")
    parser.add_argument("--requests", type=int, default=100, help="GET /v1/usage requests timed (default 100)")
    return parser.parse_args(argv)


def fill_counters(effects: Effects, jobs: int, models: tuple[str, ...], today: datetime) -> None:
    """``jobs`` jobs' worth of day counters, as the transitions would have left them (most stored, a few failed)."""
    rng = random.Random(7)
    for n in range(DAYS):
        day = (today - timedelta(days=n)).date().isoformat()
        day_jobs = jobs // DAYS + (1 if n < jobs % DAYS else 0)
        weights = [rng.random() + 0.2 for _ in models]
        counts = [int(day_jobs * w / sum(weights)) for w in weights]
        counts[0] += day_jobs - sum(counts)
        batch = []
        for model, count in zip(models, counts, strict=False):
            failed = count // 50
            credits = accounting.to_micro(PRICES[model] * count)
            batch.append(CountUsage(day, (
                (accounting.field(model, "jobs"), count), (accounting.field(model, "stored"), count - failed),
                (accounting.field(model, "failed"), failed), (accounting.field(model, "credits"), credits),
                (accounting.SPENT, credits))))
        effects.apply(batch)


def fill_records(db, records: int, models: tuple[str, ...], today: datetime) -> None:
    """``records`` job hashes with what the baseline needs of each (as fluxhook's records hold them)."""
    rng = random.Random(11)
    start = today.timestamp() - DAYS * 86400
    pipe = db.pipeline(transaction=False)
    for n in range(records):
        model = models[n % len(models)]
        pipe.hset(KEYS.job(f"job_bench{n:021d}"), mapping={
            "model": model, "status": "stored" if n % 50 else "failed",
            "submitted_at": repr(start + rng.random() * DAYS * 86400), "cost_credits": repr(PRICES[model])})
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def naive_scan(db) -> tuple[float, int]:
    """Seconds to aggregate every job record per day and model (the answer fluxhook reads from counters)."""
    started = time.perf_counter()
    totals: dict[tuple[str, str], list[float]] = {}
    seen = 0
    batch: list[str] = []

    def flush() -> None:
        pipe = db.pipeline(transaction=False)
        for key in batch:
            pipe.hmget(key, "model", "status", "submitted_at", "cost_credits")
        for model, status, submitted_at, credits in pipe.execute():
            day = datetime.fromtimestamp(float(submitted_at), timezone.utc).date().isoformat()
            row = totals.setdefault((day, model), [0, 0, 0, 0.0])
            row[0] += 1
            row[1 if status == "stored" else 2] += 1
            row[3] += float(credits)
        batch.clear()

    for key in db.scan_iter(match=KEYS.job("*"), count=1000):
        batch.append(key)
        seen += 1
        if len(batch) == 1000:
            flush()
    if batch:
        flush()
    return time.perf_counter() - started, seen


def run(args: argparse.Namespace) -> Section:
    models = MODELS[:max(1, min(args.models, len(MODELS)))]
    with BenchStack("usage", log_level="WARNING").start() as stack:
        connection = stack.redis(decode=False)
        today = datetime.now(timezone.utc)
        log(f"writing {args.jobs:,} jobs' worth of counters: {DAYS} days x {len(models)} models")
        fill_counters(Effects(connection, KEYS, 1, 60), args.jobs, models, today)
        counters_bytes = sum(connection.memory_usage(KEYS.usage((today - timedelta(days=n)).date().isoformat())) or 0
                             for n in range(DAYS))
        session = stack.api_session()
        params = {"from": (today - timedelta(days=DAYS - 1)).date().isoformat(), "to": today.date().isoformat()}
        url = f"{stack.base_url}/v1/usage"
        for _ in range(5):  # connections, imports and script caches warm
            session.get(url, params=params, timeout=30).raise_for_status()
        times, body = [], {}
        for _ in range(args.requests):
            started = time.perf_counter()
            response = session.get(url, params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            times.append((time.perf_counter() - started) * 1000)
        counted = sum(row["jobs"] for row in body["days"])
        log(f"GET /v1/usage: {len(body['days'])} rows, {counted:,} jobs, {body['total_credits']:,.0f} credits")

        scan_db = redis.Redis.from_url(stack.env["REDIS_URL"].rsplit("/", 1)[0] + "/1", decode_responses=True)
        scan_db.flushdb()
        log(f"writing {args.records:,} job records for the baseline")
        fill_records(scan_db, args.records, models, today)
        scan_seconds, scanned = naive_scan(scan_db)
        scan_db.flushdb()
        scaled = scan_seconds * args.jobs / max(1, scanned)

    p50, p95 = percentile(times, 50), percentile(times, 95)
    section = Section("GET /v1/usage, 366 days")
    section.rows = [
        Row("answer p50", f"{fmt(p50, 1)} ms", f"{fmt(scaled * 1000, 0)} ms", f"{scaled * 1000 / p50:,.0f}x faster",
            f"< {TARGET_MS:g} ms", p50 < TARGET_MS),
        Row("answer p95", f"{fmt(p95, 1)} ms", "", "", f"< {TARGET_MS:g} ms", p95 < TARGET_MS),
        Row("answer max", f"{fmt(max(times), 1)} ms"),
        Row("jobs counted", f"{counted:,}", f"{scanned:,} scanned"),
        Row("Redis for the counters", f"{counters_bytes / 1024:,.0f} KiB"),
    ]
    section.notes = [
        f"fluxhook: {args.requests} sequential requests for {DAYS} days x {len(models)} models through gunicorn, "
        f"client-side time to the whole JSON answer; the counters hold {args.jobs:,} jobs whatever their records.",
        f"baseline: SCAN + HMGET of {scanned:,} job records took {scan_seconds:.2f} s, scaled to {args.jobs:,} jobs "
        f"(linear in records); it also needs every record kept for the year, which retention does not do.",
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_report([run(args)], spaced=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
