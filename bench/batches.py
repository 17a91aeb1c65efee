"""Benchmark: what a batch costs and what it does to its key's interactive jobs.

    .venv/bin/python -m bench.batches [--items 10000] [--measured 100] [--backlog 300] [--task 3] [--submit-delay 1]

The Procfile's web and one worker, the simulator answering a submission after ``--submit-delay`` s with tasks of
``--task`` s. Three figures, each beside its baseline measured in the same run:

1. Creation: ``POST /v1/batches`` of ``--items`` items answered (202), in seconds; the items then canceled.
2. Redis commands per item, run to ``stored``: ``--measured`` items of one batch against as many single jobs
   (``POST /v1/jobs``), counted from ``INFO commandstats`` (calls, Lua's own commands included), the idle rate of the
   same stack over the same time taken off; of a key with ``max_active`` 4 (its single jobs, like its items, mostly
   sent by a worker's sender as slots free), then of one without (most single jobs sent in their own request).
3. A single job's wait: key A (``max_active`` 4) runs a batch of ``--backlog`` items while it makes single jobs one
   every 5 s, each timed from its creation to BFL's acceptance (``submitted``); against the same single jobs with no
   batch running. Not part of the test suite; it prints a table and changes nothing outside temporary directories.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS

from .common import BenchStack, Row, Section, fmt, log, median, print_report


def _key(stack: BenchStack, **limits) -> requests.Session:
    created = stack.api_session().post(f"{stack.base_url}/v1/keys", json={"name": f"bench-{time.time_ns()}",
                                                                         "reads_per_minute": 1_000_000, **limits}, timeout=10)
    created.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {created.json()['key']}"
    return session


def _calls(stack: BenchStack) -> int:
    return sum(int(stats["calls"]) for stats in stack.redis().info("commandstats").values())


def _idle_rate(stack: BenchStack, seconds: float = 10.0) -> float:
    before, started = _calls(stack), time.monotonic()
    time.sleep(seconds)
    return (_calls(stack) - before - 1) / (time.monotonic() - started)


def _items(n: int, prompt: str) -> list[dict]:
    return [{"input": {"prompt": f"{prompt} {i}"}} for i in range(n)]


def _batch_ended(stack: BenchStack, app: requests.Session, batch_id: str, timeout: float) -> dict:
    """The batch once every item of it has ended (a canceled one's too)."""
    url = f"{stack.base_url}/v1/batches/{batch_id}"
    return wait_until(lambda: (lambda b: b if b["ended_at"] else None)(app.get(url, timeout=10).json()),
                      timeout=timeout, interval=0.2, message=f"batch {batch_id} to end")


def _creation(stack: BenchStack, items: int) -> tuple[float, float]:
    """Seconds to answer the batch's creation, then its cancel (its unsent items aborted, docs/api.md)."""
    app = _key(stack)
    started = time.monotonic()
    # Short tasks: the items BFL took before the cancel keep their slots until BFL ends them.
    made = app.post(f"{stack.base_url}/v1/batches", json={"model": "flux-2-pro", "items": _items(items, "[seconds-1]")},
                    timeout=120)
    seconds = time.monotonic() - started
    made.raise_for_status()
    started = time.monotonic()
    app.post(f"{stack.base_url}/v1/batches/{made.json()['id']}/cancel", timeout=300).raise_for_status()
    canceled = time.monotonic() - started
    _batch_ended(stack, app, made.json()["id"], 300)  # its items ended, so the figures after it count none of them
    return seconds, canceled


def _commands_per_item(stack: BenchStack, n: int, task: float, idle: float, **limits) -> tuple[float, float]:
    """Commands per stored job, less idle: ``n`` single jobs (``POST /v1/jobs``, 8 at a time, as apps send them), then
    one batch of ``n`` items, of a key with ``limits``; each run waits on the stored jobs' index (one ``ZCARD`` a
    poll, the same for both)."""
    app = _key(stack, **limits)
    prompt = f"[seconds-{task:g}] measured"

    def counted(make) -> float:
        stored = stack.redis().zcard(KEYS.status("stored"))
        before, started = _calls(stack), time.monotonic()
        make()
        wait_until(lambda: stack.redis().zcard(KEYS.status("stored")) >= stored + n, timeout=600, interval=0.5,
                   message="the jobs stored")
        return (_calls(stack) - before - idle * (time.monotonic() - started)) / n

    def singles() -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: app.post(f"{stack.base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {
                "prompt": f"{prompt} {i}"}}, timeout=30).raise_for_status(), range(n)))

    def batch() -> None:
        app.post(f"{stack.base_url}/v1/batches", json={"model": "flux-2-pro", "items": _items(n, prompt)},
                 timeout=60).raise_for_status()

    return counted(singles), counted(batch)


def _single_waits(stack: BenchStack, app: requests.Session, count: int, gap: float, task: float) -> list[float]:
    """Seconds from creation to submitted of ``count`` single jobs of ``app``, one every ``gap`` s."""
    waits = []
    for n in range(count):
        made = app.post(f"{stack.base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {
            "prompt": f"[seconds-{task:g}] interactive {n}"}}, timeout=30).json()
        record = KEYS.job(made["id"])
        wait_until(lambda record=record: stack.redis().hget(record, "submitted_at"), timeout=120, interval=0.05,
                   message=f"single job {n} submitted")
        created, submitted = (float(t) for t in stack.redis().hmget(record, "created_at", "submitted_at"))
        waits.append(submitted - created)
        time.sleep(max(0.0, gap - (time.time() - created)))
    return waits


def run(args) -> Section:
    section = Section("batches: creation, Redis commands per item, a single job's wait behind its key's batch")
    with BenchStack("batches", log_level=args.log_level) as stack:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay)
        log("batches: idle rate")
        idle = _idle_rate(stack)
        log(f"batches: creation of {args.items} items")
        created, canceled = _creation(stack, args.items)
        small, small_canceled = _creation(stack, 100)
        section.rows.append(Row(f"POST /v1/batches of {args.items:,} items answered, s", fmt(created, 2),
                                fmt(small, 2), "", "<= 5", created <= 5))
        section.rows.append(Row(f"POST /v1/batches/{{id}}/cancel of {args.items:,} items answered, s",
                                fmt(canceled, 2), fmt(small_canceled, 2), "", "<= 3", canceled <= 3))
        log(f"batches: commands per item, {args.measured} singles then a batch of as many (max_active 4)")
        singles, items = _commands_per_item(stack, args.measured, args.task, idle, max_active=4)
        section.rows.append(Row("Redis commands per stored item, less idle (a key's max_active 4: singles too are "
                                "sent by a worker as slots free)", fmt(items, 1), fmt(singles, 1), "",
                                "<= a job's + 10", items <= singles + 10))
        log("batches: the same, a key without max_active")
        singles, items = _commands_per_item(stack, args.measured, args.task, idle)
        section.rows.append(Row("the same, a key without max_active (most singles sent in their own request)",
                                fmt(items, 1), fmt(singles, 1), "", "(info)", None))
        app = _key(stack, max_active=4)
        log("batches: single jobs with no batch")
        alone = _single_waits(stack, app, args.singles, 5.0, args.task)
        batch = app.post(f"{stack.base_url}/v1/batches", json={"model": "flux-2-pro", "items": _items(
            args.backlog, f"[seconds-{args.task:g}] backlog")}, timeout=60).json()
        wait_until(lambda: app.get(f"{stack.base_url}/v1/batches/{batch['id']}", timeout=10).json()["counts"]
                   ["submitted"] >= 4, timeout=60, message="the batch holding its key's slots")
        log(f"batches: single jobs beside a {args.backlog}-item batch")
        beside = _single_waits(stack, app, args.singles, 5.0, args.task)
        progress = app.get(f"{stack.base_url}/v1/batches/{batch['id']}", timeout=10).json()
        app.post(f"{stack.base_url}/v1/batches/{batch['id']}/cancel", timeout=300)
        turnover = args.task + args.submit_delay
        section.rows += [
            Row("single job created -> submitted beside its key's batch, median s", fmt(median(beside), 2),
                fmt(median(alone), 2), "", "", None),
            Row("single job created -> submitted beside its key's batch, max s", fmt(max(beside), 2),
                fmt(max(alone), 2), "", f"<= no batch + one turnover ({turnover:g} s)",
                max(beside) <= max(alone) + turnover),
        ]
        section.notes.append(
            f"BFL answers a submission after {args.submit_delay:g} s; tasks of {args.task:g} s; one worker process. "
            f"Idle: {idle:.1f} commands/s. The key's {args.singles} single jobs came one every 5 s while its "
            f"{args.backlog}-item batch held its 4 slots ({progress['counts']['stored']} items stored by the last).")
        return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batches", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="items of the batch whose creation is timed")
    parser.add_argument("--measured", type=int, default=100, help="jobs and items whose Redis commands are counted")
    parser.add_argument("--backlog", type=int, default=300, help="items of the batch the single jobs run beside")
    parser.add_argument("--singles", type=int, default=8, help="single jobs timed with and without the batch")
    parser.add_argument("--task", type=float, default=3.0, help="seconds each task runs at BFL (3)")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission (1)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the processes")
    args = parser.parse_args(argv)
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
