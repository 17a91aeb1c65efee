"""Benchmark: sends paced by what storage keeps. BFL finishing results faster than one worker stores them loses none.

    .venv/bin/python -m bench.paced [--items 5000] [--url-life 60] [--task 2] [--submit-delay 1] [--delivery 2]

The Procfile's web and one worker process, BFL (the simulator) with 24 slots answering a submission after
``--submit-delay`` s, tasks of ``--task`` s, and each file's delivery slowed by ``--delivery`` s, so the worker's four
download lanes store about a quarter of what BFL finishes (24 / (1 + 2) = 8 a second finished, 4 / 2 = 2 stored).
A result's link lives ``--url-life`` s (the simulator's links, and the catalog's word to fluxhook through
``BFL_MODELS_FILE``), and BFL gives no fresh link for a lapsed one: a result downloaded too late is lost.

Key A posts a batch of ``--items`` items; key B posts a single job every ``--single-gap`` s while it runs. Twice: with
pacing (``STORE_PACING_SHARE`` at its default), then with pacing off (0, a setting for this baseline only). Printed:
results expired (jobs ended ``expired`` / ``result_expired``, and deliveries the simulator refused for a lapsed link),
the backlog's peak (results BFL finished that fluxhook had not stored), BFL's tasks in flight at most, and key B's
single jobs from creation to ``stored``, p50 and p99. Not part of the test suite; it changes nothing outside
temporary directories.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import requests

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.store.keys import KEYS

from .common import BenchStack, Row, Section, fmt, log, percentile, print_report

SLOTS = 24
MODEL = "flux-2-pro"


def _key(stack: BenchStack) -> requests.Session:
    created = stack.api_session().post(f"{stack.base_url}/v1/keys", json={"name": f"bench-{time.time_ns()}",
                                                                         "reads_per_minute": 1_000_000}, timeout=10)
    created.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {created.json()['key']}"
    return session


def _models_file(url_life: int) -> str:
    """The catalog's word on the simulator's links: flux-2-pro's live ``url_life`` s."""
    path = Path(tempfile.mkdtemp(prefix="fluxhook-bench-paced-")) / "models.toml"
    path.write_text(f'[models."{MODEL}"]\nkind = "image"\nurl_life = {url_life}\n', encoding="utf-8")
    return str(path)


class _Sampler(threading.Thread):
    """The backlog (ready jobs) and whether sends wait for storage, every half second, until stopped."""

    def __init__(self, stack: BenchStack):
        super().__init__(daemon=True)
        self.db = stack.redis()
        self.stop = threading.Event()
        self.peak = 0
        self.held_seconds = 0.0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            pipe = self.db.pipeline(transaction=False)
            pipe.zcard(KEYS.status(st.READY))
            pipe.exists(KEYS.store_held)
            ready, held = pipe.execute()
            self.peak = max(self.peak, int(ready))
            self.held_seconds += 0.5 if held else 0.0


def _singles(stack: BenchStack, app: requests.Session, gap: float, task: float, until: threading.Event) -> list[str]:
    """Key B's single jobs, one every ``gap`` s until ``until`` is set: their ids."""
    made = []
    while not until.wait(gap):
        answer = app.post(f"{stack.base_url}/v1/jobs", json={"model": MODEL, "input": {
            "prompt": f"[seconds-{task:g}] single {len(made)}"}}, timeout=30)
        answer.raise_for_status()
        made.append(answer.json()["id"])
    return made


def _run(args, share: str) -> dict:
    env = {"STORE_PACING_SHARE": share, "BFL_MAX_ACTIVE": str(SLOTS), "BFL_MODELS_FILE": _models_file(args.url_life)}
    with BenchStack(f"paced-{share}", log_level=args.log_level, **env) as stack:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay, task_delay=args.task, delivery_delay=args.delivery,
                           url_ttl=args.url_life, fresh_links=False, max_active=SLOTS)
        a, b = _key(stack), _key(stack)
        sampler = _Sampler(stack)
        sampler.start()
        started = time.monotonic()
        batch = a.post(f"{stack.base_url}/v1/batches", json={"model": MODEL, "items": [
            {"input": {"prompt": f"[seconds-{args.task:g}] item {i}"}} for i in range(args.items)]}, timeout=300)
        batch.raise_for_status()
        batch_id = batch.json()["id"]
        done = threading.Event()
        singles: list[str] = []
        maker = threading.Thread(target=lambda: singles.extend(_singles(stack, b, args.single_gap, args.task, done)),
                                 daemon=True)
        maker.start()
        url = f"{stack.base_url}/v1/batches/{batch_id}"
        ended = wait_until(lambda: (lambda got: got if got["ended_at"] else None)(a.get(url, timeout=10).json()),
                           timeout=args.timeout, interval=1.0, message="the batch to end")
        done.set()
        maker.join()
        db = stack.redis()
        wait_until(lambda: all(db.hget(KEYS.job(j), "status") in st.TERMINAL for j in singles), timeout=300,
                   interval=0.5, message="key B's single jobs to end")
        seconds = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        to_stored = []
        for job_id in singles:
            status, created, completed = db.hmget(KEYS.job(job_id), "status", "created_at", "completed_at")
            if status == st.STORED:
                to_stored.append(float(completed) - float(created))
        counts = ended["counts"]
        sim = stack.sim_stats()
        return {"expired": counts.get("expired", 0), "refused": sim.get("deliveries_expired", 0),
                "stored": counts.get("stored", 0), "failed": counts.get("failed", 0), "peak": sampler.peak,
                "held": sampler.held_seconds, "in_flight": sim.get("max_active_seen", 0), "seconds": seconds,
                "singles": to_stored, "single_count": len(singles)}


def run(args) -> Section:
    section = Section("paced by storage: BFL finishing four times what one worker stores, a batch and another key's "
                      "single jobs")
    log(f"paced: {args.items} items with pacing")
    paced = _run(args, "0.5")
    log(f"paced: {args.items} items with pacing off")
    unpaced = _run(args, "0")

    def p(values: list[float], q: float) -> str:
        return fmt(percentile(values, q), 1) if values else "-"

    section.rows += [
        Row("results expired (jobs ended expired, result_expired)", str(paced["expired"]), str(unpaced["expired"]),
            "", "0", paced["expired"] == 0),
        Row("deliveries refused for a lapsed link", str(paced["refused"]), str(unpaced["refused"]), "", "0",
            paced["refused"] == 0),
        Row("items stored", f"{paced['stored']:,}", f"{unpaced['stored']:,}", "", f"{args.items:,}",
            paced["stored"] == args.items),
        Row("backlog peak (results finished, not stored)", str(paced["peak"]), str(unpaced["peak"]), "", "(info)", None),
        Row("seconds sends waited for storage", fmt(paced["held"], 0), fmt(unpaced["held"], 0), "", "(info)", None),
        Row("BFL tasks in flight at most", str(paced["in_flight"]), str(unpaced["in_flight"]), "", f"<= {SLOTS}",
            paced["in_flight"] <= SLOTS),
        Row("key B's single job created -> stored, p50 s", p(paced["singles"], 50), p(unpaced["singles"], 50), "",
            "(info)", None),
        Row("key B's single job created -> stored, p99 s", p(paced["singles"], 99), p(unpaced["singles"], 99), "",
            "(info)", None),
        Row("run, s", fmt(paced["seconds"], 0), fmt(unpaced["seconds"], 0), "", "(info)", None),
    ]
    section.notes.append(
        f"Baseline: the same run with STORE_PACING_SHARE=0. BFL: {SLOTS} slots, a submission answered after "
        f"{args.submit_delay:g} s, tasks of {args.task:g} s, each file delivered after {args.delivery:g} s, links "
        f"living {args.url_life} s with no fresh one for a lapsed link; one worker process (four download lanes). Key "
        f"B made a single job every {args.single_gap:g} s ({paced['single_count']} with pacing, "
        f"{unpaced['single_count']} without).")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paced", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5_000, help="items of key A's batch (5,000)")
    parser.add_argument("--url-life", type=int, default=60, help="seconds a result's link lives (60)")
    parser.add_argument("--task", type=float, default=2.0, help="seconds each task runs at BFL (2)")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission (1)")
    parser.add_argument("--delivery", type=float, default=2.0, help="seconds each file's delivery takes (2)")
    parser.add_argument("--single-gap", type=float, default=3.0, help="seconds between key B's single jobs (3)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="longest a run may take, s")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the processes")
    args = parser.parse_args(argv)
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
