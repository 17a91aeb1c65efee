"""Benchmark: a key's single jobs beside its own batch's queued downloads (docs/api.md "Interactive first",
docs/architecture.md one ordering rule in every line).

    .venv/bin/python -m bench.download_order [--backlog 1000] [--delivery 0.5] [--singles 6] [--submit-delay 1]

The Procfile's web and one worker (4 download lanes), the simulator answering a submission after ``--submit-delay`` s
with tasks of 0.5 s and serving each result file over ``--delivery`` s: BFL ends tasks faster than the lanes download
them, so key A's ``--backlog``-item batch leaves hundreds of downloads queued. Timed for each single job, from its callback
(its timeline's entry) to stored (``completed_at``), less its own download's seconds (the timeline's download entry):
A's own single jobs and another key B's, one of each every 3 s while the batch's downloads are queued; against A's
single jobs with no batch, in the same run. Not part of
the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import requests

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS

from .batches import _items, _key
from .common import BenchStack, Row, Section, fmt, log, median, print_report


def _batch(stack: BenchStack, app: requests.Session, batch_id: str) -> dict:
    return app.get(f"{stack.base_url}/v1/batches/{batch_id}", timeout=10).json()


def _send(stack: BenchStack, app: requests.Session, prompt: str) -> str:
    made = app.post(f"{stack.base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}}, timeout=30)
    made.raise_for_status()
    return made.json()["id"]


@dataclass(frozen=True)
class Timing:
    """One job's way from its callback to stored: ``wait`` is what was not its own download."""

    total: float
    download: float

    @property
    def wait(self) -> float:
        return self.total - self.download


def _timings(stack: BenchStack, job_ids: list[str]) -> list[Timing]:
    """Each job's callback (its timeline's entry) to stored, and its download's own seconds, once all are stored."""
    db = stack.redis()
    found = []
    for job_id in job_ids:
        wait_until(lambda job_id=job_id: db.hget(KEYS.job(job_id), "completed_at"), timeout=600, interval=0.1,
                   message=f"job {job_id} stored")
        entries = [json.loads(e) for e in db.lrange(KEYS.timeline(job_id), 0, -1)]
        called = min(e["at"] for e in entries if e["kind"] == "callback")
        download = sum(e["seconds"] for e in entries if e["kind"] == "download")
        found.append(Timing(float(db.hget(KEYS.job(job_id), "completed_at")) - called, download))
    return found


def run(args) -> Section:
    section = Section("downloads: a key's single job beside its own batch's queued downloads")
    with BenchStack("download-order", log_level=args.log_level) as stack:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay, delivery_delay=args.delivery)
        a, b = _key(stack), _key(stack)
        log("download order: A's single jobs with no batch")
        alone = []
        for n in range(args.singles):
            alone.append(_send(stack, a, f"[seconds-0.5] alone {n}"))
            time.sleep(3.0)
        alone_times = _timings(stack, alone)
        log(f"download order: A's batch of {args.backlog}, then A's and B's single jobs beside its downloads")
        batch = a.post(f"{stack.base_url}/v1/batches", json={"model": "flux-2-pro", "items": _items(
            args.backlog, "[seconds-0.5] backlog")}, timeout=60).json()
        wait_until(lambda: _batch(stack, a, batch["id"])["counts"].get("ready", 0) >= 50, timeout=300,
                   message="50 of the batch's downloads queued")
        mine, theirs, queued = [], [], []
        for n in range(args.singles):
            queued.append(_batch(stack, a, batch["id"])["counts"].get("ready", 0))
            mine.append(_send(stack, a, f"[seconds-0.5] A beside its batch {n}"))
            theirs.append(_send(stack, b, f"[seconds-0.5] B beside A's batch {n}"))
            time.sleep(3.0)
        mine_times, theirs_times = _timings(stack, mine), _timings(stack, theirs)
        left = _batch(stack, a, batch["id"])["counts"]
        section.rows += [
            Row("A's single job beside its batch's queued downloads: callback -> stored, max s",
                fmt(max(t.total for t in mine_times), 2), fmt(max(t.total for t in alone_times), 2), "", "", None),
            Row("  the same less its own download's time, max s", fmt(max(t.wait for t in mine_times), 2),
                fmt(max(t.wait for t in alone_times), 2), "", "<= 2", max(t.wait for t in mine_times) <= 2.0),
            Row("B's single job beside A's batch, less its own download's time, max s",
                fmt(max(t.wait for t in theirs_times), 2), fmt(max(t.wait for t in alone_times), 2), "", "<= 2",
                max(t.wait for t in theirs_times) <= 2.0),
            Row("a download's own time beside the batch (alone), median s",
                fmt(median(t.download for t in mine_times + theirs_times), 2),
                fmt(median(t.download for t in alone_times), 2), "", "", None),
        ]
        section.notes.append(
            f"BFL answers a submission after {args.submit_delay:g} s; tasks of 0.5 s; each result file served over "
            f"{args.delivery:g} s; one worker process (4 download lanes). Batch downloads queued when each pair was "
            f"sent: {', '.join(map(str, queued))}; when the last was stored: {left.get('ready', 0)} "
            f"(stored {left.get('stored', 0)} of {args.backlog}). Baseline: A's single jobs with no batch.")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.download_order", description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1000, help="items of key A's batch")
    parser.add_argument("--delivery", type=float, default=0.5, help="seconds BFL's storage takes to serve a file")
    parser.add_argument("--singles", type=int, default=6, help="single jobs of each key timed")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the processes")
    print_report([run(parser.parse_args(argv))])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
