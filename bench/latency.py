"""Benchmark: the worker under BFL's real latency, beside the code before the senders.

    .venv/bin/python -m bench.latency [--jobs 300] [--submit-delay 1] [--task-delay 8] [--delivery-delay 0]
                                      [--runs one,two,p2,p4] [--baseline-commit 1bb671f]
                                      [--baseline-tree /tmp/fluxhook-<commit>]

Each run starts the Procfile's web and ``python -m worker`` processes on an embedded Redis, before one simulator
process serving one or two BFL accounts of 24 slots, whose every submission is answered after ``--submit-delay``
seconds and every task ends after ``--task-delay`` (then the callback; the result's download waits
``--delivery-delay`` before its first byte). ``--jobs`` jobs are posted at once by 32 clients through
``POST /v1/jobs``, and every figure comes from the jobs' Redis records:

- callback -> stored: from fluxhook's acceptance of the job's callback (its timeline's first ``callback``
  entry) to the file stored (``completed_at``), p50 / p99 / max; and how many results were lost (not ``stored``);
- the slots kept busy while jobs queue: the share of slot-time spent sending a task or running it at BFL
  (``slots_busy``), and the jobs sent to BFL per second meanwhile beside the bound, slots / (submission + task
  time): 24 / 9 s = 2.67 jobs/s for one account;
- each worker process's peak RSS, sampled every 0.5 s.

Runs: ``one`` (one account, one worker process: the Procfile as it is), ``two`` (two accounts, one process),
``p2`` and ``p4`` (one account, 2 and 4 worker processes). Each run is made with this tree and with the
baseline tree (a ``git worktree`` of ``--baseline-commit``, by default 1bb671f, the code before the senders, made
when missing), one after the other on this machine, both before this tree's simulator. Loopback only; nothing outside temporary
directories changes (but the baseline checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "1bb671f"
RUNS = {"one": (1, 1), "two": (2, 1), "p2": (1, 2), "p4": (1, 4)}
SLOTS = 24
CLIENTS = 32
RUN_TIMEOUT = 1800


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs posted at once")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission")
    parser.add_argument("--task-delay", type=float, default=8.0, help="seconds a task takes at BFL")
    parser.add_argument("--delivery-delay", type=float, default=0.0, help="seconds before a result's first byte")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                        help=f"the code to compare with (default {BASELINE_COMMIT}, the code before the senders)")
    parser.add_argument("--baseline-tree", default=None,
                        help="checkout of the code to compare with; 'none' skips the baseline")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one run in this process (for either tree)
    args = parser.parse_args(argv)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not args.runs or set(args.runs) - set(RUNS):
        parser.error(f"runs are among {', '.join(RUNS)}")
    return args


# --------------------------------------------------------------------------- one run, in its own process


def measure(args: argparse.Namespace, accounts: int, processes: int) -> dict:
    """Start a stack from the tree on the path, post the jobs, wait for every one to end; the figures."""
    from bench.accounts import AccountsStack, post_jobs
    from bench.common import percentile, read_jobs, tree_memory, wait_all_terminal

    stack_args = argparse.Namespace(task_delay=args.task_delay, max_active=SLOTS, log_level="WARNING",
                                    workers=processes, submit_delay=args.submit_delay)
    # This tree's simulator whichever tree runs, so both runs meet the same BFL (the baseline's would make each
    # image on its first download, not while its task runs).
    tree = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"], cwd = str(ROOT), os.getcwd()
    os.chdir(ROOT)
    try:
        stack = AccountsStack(("eu", "us")[:accounts], stack_args)
    finally:
        os.environ["PYTHONPATH"] = tree
        os.chdir(cwd)
    stack.bench.env["PYTHONPATH"] = tree
    peaks: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            for worker in stack.bench.workers:
                rss = tree_memory(worker.pid)["rss"]
                if rss == rss:  # not NaN
                    peaks[worker.pid] = max(peaks.get(worker.pid, 0.0), rss)

    try:
        stack.start()
        for name in stack.names:
            # BFL's own limit above fluxhook's slots (no 429), 1 MP JPEGs as generations look.
            stack.settings(name, delivery_delay=args.delivery_delay, scene_images=True, image_format="jpeg")
        threading.Thread(target=sample, daemon=True).start()
        fed = post_jobs(stack, args.jobs, None, threads=CLIENTS)
        ids = fed.ids
        wait_all_terminal(stack.bench.redis(), ids, timeout=RUN_TIMEOUT)
        fields = ("status", "submitted_at", "finished_at", "completed_at")
        records = [dict(r, id=i) for i, r in zip(ids, read_jobs(stack.bench.redis(), ids, fields), strict=True)]
        arrived = callbacks_at(stack.bench.redis(), ids)
    finally:
        done.set()
        stack.stop()
    stored = [r for r in records if r["status"] == "stored"]
    to_stored = [float(r["completed_at"]) - arrived[r["id"]] for r in stored if r["id"] in arrived]
    busy, rate = slots_busy([r for r in records if r["submitted_at"] and r["finished_at"]], args.submit_delay,
                            SLOTS * accounts)
    return {"jobs": len(ids), "refused": len(fed.refused), "stored": len(stored),
            "lost": len(records) - len(stored),
            "p50": percentile(to_stored, 50), "p99": percentile(to_stored, 99), "max": max(to_stored, default=0.0),
            "busy": busy, "rate": rate, "bound": SLOTS * accounts / (args.submit_delay + args.task_delay),
            "rss": max(peaks.values(), default=float("nan"))}


def callbacks_at(db, ids: list[str]) -> dict[str, float]:
    """When fluxhook accepted each job's first callback, from the jobs' timelines."""
    from fluxhook.store.keys import KEYS

    pipe = db.pipeline(transaction=False)
    for job_id in ids:
        pipe.lrange(KEYS.timeline(job_id), 0, -1)
    arrived = {}
    for job_id, entries in zip(ids, pipe.execute(), strict=True):
        times = [e["at"] for e in map(json.loads, entries) if e.get("kind") == "callback"]
        if times:
            arrived[job_id] = min(times)
    return arrived


def slots_busy(records: list[dict], submit_delay: float, slots: int) -> tuple[float, float]:
    """The share of the slots busy while jobs queued, and the jobs sent to BFL per second meanwhile.

    A slot is busy from its submission's start (BFL's answer, ``submit_delay`` before ``submitted_at``) to the task's
    end (``finished_at``), as docs/architecture.md counts a turn. "While jobs queued": from the moment the first ``slots`` jobs
    were being sent or run to the start of the last job's submission (after it, nothing waits). The busy share is
    the integral of busy slots over that window, over ``slots`` times its length. The rate is what that keeps
    flowing, Little's law: busy slots over the time a job holds one (its turn, measured). Counting the jobs sent
    in the window instead reads low by up to a turn's worth, for the turns are in step: a part-filled last turn
    weighs on it."""
    spans = sorted((float(r["submitted_at"]) - submit_delay, float(r["finished_at"])) for r in records)
    if len(spans) <= slots:
        return float("nan"), float("nan")
    start, end = spans[slots - 1][0], spans[-1][0]
    if end <= start:
        return float("nan"), float("nan")
    covered = sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)
    busy = covered / (slots * (end - start))
    turn = sum(b - a for a, b in spans) / len(spans)
    return busy, busy * slots / turn


def run_in(tree: Path, args: argparse.Namespace, name: str) -> dict:
    """One run of ``name`` in its own process, with ``tree``'s code first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--run", name, "--jobs", str(args.jobs),
               "--submit-delay", str(args.submit_delay), "--task-delay", str(args.task_delay),
               "--delivery-delay", str(args.delivery_delay)]
    child = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=RUN_TIMEOUT + 300)
    finally:
        # Stopped early (Ctrl-C, a SIGTERM, the timeout): the run stops its stack on its way out, not left running.
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
    if child.returncode != 0:
        raise RuntimeError(f"the run {name} in {tree} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def exit_on_sigterm() -> None:
    """A SIGTERM ends this process as Ctrl-C does, by an exception, so each ``finally`` on the way out runs (a
    run's ``stack.stop()``, the parent's end of its run). Not bench.common's: a run's process has another tree's
    bench first on its path, which may not have it."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def ensure_baseline(tree: Path, commit: str) -> Path:
    """The code to compare with: reused if there, else a detached worktree of ``commit``."""
    if not (tree / "Procfile").exists():
        from devtools.processes import require_tools

        require_tools("bench-latency", "git")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                       check=True, timeout=120)
    return tree


# --------------------------------------------------------------------------- the table


def describe(name: str) -> str:
    accounts, processes = RUNS[name]
    return f"{accounts} account{'s' * (accounts > 1)}, {processes} worker process{'es' * (processes > 1)}"


def row(label: str, figures: dict) -> str:
    return (f"  {label:<9} stored {figures['stored']}/{figures['jobs']} (lost {figures['lost']}), "
            f"callback->stored p50 {figures['p50']:.2f} s, p99 {figures['p99']:.2f} s, max {figures['max']:.1f} s; "
            f"slots busy {figures['busy'] * 100:.0f} %, sent to BFL {figures['rate']:.2f} jobs/s "
            f"(bound {figures['bound']:.2f}); "
            f"worker RSS peak {figures['rss']:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    if args.run:
        accounts, processes = RUNS[args.run]
        print(json.dumps(measure(args, accounts, processes)))
        return 0
    tree = args.baseline_tree or f"/tmp/fluxhook-{args.baseline_commit}"
    baseline = None if tree == "none" else ensure_baseline(Path(tree), args.baseline_commit)
    print(f"bench-latency: {args.jobs} jobs at once; BFL answers a submission after {args.submit_delay} s, "
          f"tasks take {args.task_delay} s, delivery waits {args.delivery_delay} s; {SLOTS} slots an account",
          flush=True)
    results: dict[str, dict] = {}
    for name in args.runs:
        print(f"\n{name}: {describe(name)}", flush=True)
        for label, tree in (("fluxhook", ROOT), ("baseline", baseline)):
            if tree is None:
                continue
            started = time.monotonic()
            results[f"{name}/{label}"] = figures = run_in(tree, args, name)
            print(row(label, figures) + f"  [{time.monotonic() - started:.0f} s]", flush=True)
    one, two = results.get("one/fluxhook"), results.get("two/fluxhook")
    if one and two:
        print(f"\ntwo accounts / one: {two['rate'] / one['rate']:.2f}x (target >= 1.9x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
