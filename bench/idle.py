"""Benchmark: what fluxhook costs Redis at rest (docs/scaling.md, "At rest it costs nothing"), beside c62e1e8.

    .venv/bin/python -m bench.idle [--seconds 120] [--workers 1] [--settle 10]
                                   [--baseline-commit c62e1e8] [--baseline-tree /tmp/fluxhook-<commit>|none]

Each tree runs the Procfile's web (all its gunicorn workers) and ``--workers`` ``python -m worker`` processes on a Redis
of their own, with the BFL simulator; one job is posted and waited for until stored, then, ``--settle`` seconds later,
nothing happens for ``--seconds``. Over that rest the bench reads:

- Redis's own ``INFO commandstats`` before and after: every command Redis ran, those run inside scripts included,
  by command (less the bench's own ``INFO`` and ``MONITOR``);
- ``MONITOR``: each command with the address of the connection that sent it, that address mapped to the process
  that holds it (its local port, from the kernel's socket table): commands by process. A script's inner commands
  count for the process whose ``EVAL``/``EVALSHA`` ran them. (MONITOR shows no ``CLIENT`` command: those are in the
  first count only.)

Then waking (docs/scaling.md: within 0.2 s): a second job is posted after the rest, and its notification's first POST to a
receiver of the bench's own is timed from the job's end (its record's ``completed_at``); its download's start, from
its callback (both from its timeline); and with the stack's one slot (``BFL_MAX_ACTIVE=1``) held by a job whose task
takes a second, a queued job's send, from the callback that frees the slot to its task's arrival at the simulator.

Both trees run one after the other in this run, each in a process of its own with its tree's code first on the path
(the baseline: a detached ``git worktree`` of ``--baseline-commit``, made when missing, as bench/latency.py does).
docs/scaling.md's figure is at most 1 command a second for a web and a worker process together (4 for 4 worker processes),
averaged over 10 minutes: ``--seconds 600`` measures it so; the default 2 minutes reads the same rate.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from devtools.slow_receivers import PromptReceiver

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "c62e1e8"
# The bench's own commands: its snapshots and its MONITOR (never sent by fluxhook at rest).
OWN = frozenset({"info", "monitor"})
SCRIPTS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
BUDGET_PER_PROCESS_PAIR = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="the rest measured (docs/scaling.md: 600)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes beside the one web")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the first job before the rest")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    parser.add_argument("--baseline-tree", default=None, help="checkout to compare with; 'none' skips the baseline")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # one tree, in this process
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- one tree, in its own process


class Monitor(threading.Thread):
    """Counts every command Redis runs by (client address, command) until ``stop``; a script's inner commands under
    the address of the client whose script ran them."""

    def __init__(self, url: str):
        super().__init__(name="idle-monitor", daemon=True)
        import redis

        # No socket timeout: at rest a MONITOR may read nothing for minutes, and redis-py's default (5 s) would end
        # it, each new one's HELLO and CLIENT SETINFO then counted as fluxhook's.
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=None)
        # Redis before 7 shows a script's call, then its inner commands; 7 and later the inner commands first.
        self.call_first = int(self.client.info("server")["redis_version"].split(".")[0]) < 7
        self.counts: Counter[tuple[str, str]] = Counter()
        self.counting = False
        self._stopped = False
        self.errors: list[str] = []

    def run(self) -> None:
        while not self._stopped:
            try:
                self._listen()
            except Exception as exc:  # a line redis-py cannot parse: noted, and the monitor listens again
                self.errors.append(repr(exc)[:200])

    def _listen(self) -> None:
        pending: list[str] = []  # inner commands of a script whose call has not shown yet (Redis 7)
        last_script_client = ""
        with self.client.monitor() as monitor:
            for event in monitor.listen():
                if self._stopped:
                    return
                if not self.counting:
                    continue
                command = str(event.get("command", "")).split(" ", 1)[0].strip('"').lower()
                if event.get("client_type") == "lua":
                    if self.call_first:
                        self.counts[(last_script_client, command)] += 1
                    else:
                        pending.append(command)
                    continue
                client = f"{event.get('client_address')}:{event.get('client_port')}"
                self.counts[(client, command)] += 1
                if command in SCRIPTS:
                    last_script_client = client
                    for inner in pending:
                        self.counts[(client, inner)] += 1
                pending.clear()

    def stop(self) -> None:
        self._stopped = True
        try:
            self.client.ping()  # one more line for the monitor to read, and see the stop
        except Exception:
            pass


def processes_by_port(redis_port: int, roots: dict[str, int]) -> dict[str, str]:
    """The local address of each connection to Redis, named for the process tree (``roots``: name -> pid) holding
    it."""
    import psutil

    named: dict[str, str] = {}
    for name, pid in roots.items():
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                connections = process.net_connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for conn in connections:
                if conn.raddr and conn.raddr.port == redis_port:
                    named[f"{conn.laddr.ip}:{conn.laddr.port}"] = name
    return named


def commandstats(db) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in db.info("commandstats").items()}


def first_notification(receiver: PromptReceiver, job_id: str, timeout: float = 60.0) -> float:
    """When the first POST of ``job_id``'s notification reached ``receiver`` (its webhook-id is ``msg_<job id>``)."""
    deadline = time.monotonic() + timeout
    while f"msg_{job_id}" not in receiver.arrived:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no notification of {job_id}")
        time.sleep(0.01)
    return receiver.arrived[f"msg_{job_id}"]


def download_after_callback(db, job_id: str) -> float:
    """From the job's callback (its timeline's entry as it came) to the start of the download that stored it (that
    entry's time less its seconds); NaN if the job had no callback."""
    from fluxhook.store.keys import KEYS

    entries = [json.loads(raw) for raw in db.lrange(KEYS.timeline(job_id), 0, -1)]
    callbacks = [entry["at"] for entry in entries if entry["kind"] == "callback"]
    stored = [entry for entry in entries if entry["kind"] == "download" and entry.get("outcome") == "stored"]
    if not callbacks or not stored:
        return float("nan")
    return stored[0]["at"] - stored[0]["seconds"] - min(callbacks)


def send_after_slot_freed(stack, db) -> float:
    """Two jobs after the rest, BFL_MAX_ACTIVE=1: the first holds the one slot for a task of a second; the second
    waits queued until the first's callback frees it. From that callback (the first job's timeline) to the second's
    submission reaching BFL (the simulator's record of its task)."""
    from bench.common import wait_all_terminal
    from fluxhook.store.keys import KEYS

    session = stack.api_session()
    made = [session.post(stack.base_url + "/v1/jobs", timeout=30,
                         json={"model": "flux-2-pro", "input": {"prompt": prompt}}).json()
            for prompt in ("[seconds-1] bench-idle holds the slot", "bench-idle waits for the slot")]
    holder, queued = (job["id"] for job in made)
    wait_all_terminal(db, [holder, queued], timeout=120)
    entries = [json.loads(raw) for raw in db.lrange(KEYS.timeline(holder), 0, -1)]
    freed = min(entry["at"] for entry in entries if entry["kind"] == "callback")
    bfl_id = db.hget(KEYS.job(queued), "bfl_id")
    task = requests.get(f"{stack.sim_base}/_sim/tasks/{bfl_id}", timeout=10).json()
    return task["created_at"] - freed


def stored_job(stack, prompt: str) -> str:
    from bench.common import wait_all_terminal

    answer = stack.api_session().post(stack.base_url + "/v1/jobs", timeout=30,
                                      json={"model": "flux-2-pro", "input": {"prompt": prompt}})
    answer.raise_for_status()
    job_id = answer.json()["id"]
    wait_all_terminal(stack.redis(), [job_id], timeout=120)
    return job_id


def measure(args: argparse.Namespace) -> dict:
    """Start a stack from the tree on the path, store one job, then count what the rest costs; then time the next
    job's notification from its end."""
    from bench.common import BenchStack, read_jobs

    receiver = PromptReceiver()
    secret = "whsec_" + base64.b64encode(b"fluxhook-bench-idle-key-32-bytes").decode()
    with BenchStack("idle", log_level="WARNING", BFL_MAX_ACTIVE="1", NOTIFY_URL=f"http://127.0.0.1:{receiver.port}/hooks",
                    NOTIFY_SECRET=secret, NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receiver.port}") as stack:
        stack.start(workers=args.workers)
        db = stack.redis()
        job_id = stored_job(stack, "bench-idle first job")
        status = read_jobs(db, [job_id], ("status",))[0]["status"]
        time.sleep(args.settle)  # the first job's after-effects: its notification, the balance's look, a thumbnail
        monitor = Monitor(stack.env["REDIS_URL"])
        monitor.start()
        time.sleep(0.5)  # the monitor is listening
        roots = {"web": stack.web.pid, **{f"worker-{n}": w.pid for n, w in enumerate(stack.workers, 1)}}
        before = commandstats(db)
        monitor.counting = True
        started = time.monotonic()
        time.sleep(args.seconds)
        monitor.counting = False
        after = commandstats(db)
        elapsed = time.monotonic() - started
        port = int(stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        named = processes_by_port(port, roots)
        monitor.stop()
        # Waking: the next job's notification after the rest, from its end (its record's completed_at).
        woken = stored_job(stack, "bench-idle after the rest")
        ended = float(read_jobs(db, [woken], ("completed_at",))[0]["completed_at"] or "nan")
        notified = first_notification(receiver, woken) - ended
        downloaded = download_after_callback(db, woken)
        sent = send_after_slot_freed(stack, db)
    receiver.stop()
    by_command = {name: after[name] - before.get(name, 0) for name in after
                  if name not in OWN and after[name] - before.get(name, 0) > 0}
    by_process: Counter[str] = Counter({name: 0 for name in roots})  # a process that sent nothing shows its 0
    by_process_command: Counter[str] = Counter()
    for (client, command), calls in monitor.counts.items():
        if command in OWN:
            continue
        process = named.get(client, "other (closed connection)")
        by_process[process] += calls
        by_process_command[f"{process} {command}"] += calls
    return {"seconds": elapsed, "first_job": status, "by_command": by_command, "by_process": dict(by_process),
            "by_process_command": dict(by_process_command), "notified_after_end": notified,
            "download_after_callback": downloaded, "send_after_slot_freed": sent,
            "monitor_errors": monitor.errors[:5]}


# --------------------------------------------------------------------------- both trees, side by side


def run_in(tree: Path, args: argparse.Namespace) -> dict:
    """One measure in its own process, with ``tree``'s code (and so its Procfile's processes) first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--run", "--seconds", str(args.seconds),
               "--workers", str(args.workers), "--settle", str(args.settle)]
    child = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=args.seconds + args.settle + 600)
    finally:
        if child.poll() is None:  # stopped early: the run stops its stack on its way out
            child.terminate()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
    if child.returncode != 0:
        raise RuntimeError(f"the measure in {tree} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def table(title: str, results: dict[str, dict], key: str) -> None:
    names = sorted({name for figures in results.values() for name in figures[key]},
                   key=lambda name: -max(f[key].get(name, 0) / f["seconds"] for f in results.values()))
    labels = list(results)
    print(f"\n{title} (commands a second)")
    print(f"  {'':<40}" + "".join(f"{label:>12}" for label in labels))
    for name in names:
        print(f"  {name:<40}" + "".join(f"{results[label][key].get(name, 0) / results[label]['seconds']:>12.3f}"
                                        for label in labels))
    print(f"  {'total':<40}" + "".join(f"{sum(results[label][key].values()) / results[label]['seconds']:>12.3f}"
                                      for label in labels))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.run:
        print(json.dumps(measure(args)))
        return 0
    from bench.latency import ensure_baseline

    tree = args.baseline_tree or f"/tmp/fluxhook-{args.baseline_commit}"
    baseline = None if tree == "none" else ensure_baseline(Path(tree), args.baseline_commit)
    print(f"bench-idle: one web and {args.workers} worker process(es), one job stored, then {args.seconds:.0f} s "
          f"at rest", flush=True)
    results: dict[str, dict] = {}
    for label, path in (("fluxhook", ROOT), (args.baseline_commit, baseline)):
        if path is None:
            continue
        started = time.monotonic()
        results[label] = run_in(path, args)
        print(f"  {label}: measured {results[label]['seconds']:.0f} s at rest "
              f"(first job {results[label]['first_job']}) [{time.monotonic() - started:.0f} s]", flush=True)
    table("By command, from INFO commandstats (a script's inner commands included)", results, "by_command")
    table("By process, from MONITOR (a script's inner commands counted for its caller; MONITOR shows no CLIENT command)",
          results, "by_process")
    table("By process and command, from MONITOR", results, "by_process_command")
    for label, figures in results.items():
        if figures.get("monitor_errors"):
            print(f"\n{label}: MONITOR lines not understood (listened again): {figures['monitor_errors']}")
    print("\nWaking after the rest (docs/scaling.md: each <= 0.2 s): the next job's notification from its end; its download's "
          "start from its callback; a queued job's send from the callback that freed its slot (BFL_MAX_ACTIVE=1)")
    for label, figures in results.items():
        woken = [figures.get(name, float("nan"))
                 for name in ("notified_after_end", "download_after_callback", "send_after_slot_freed")]
        print(f"  {label:<12}" + "   ".join(f"{value:.3f} s" for value in woken))
    ours = results["fluxhook"]
    rate = sum(ours["by_command"].values()) / ours["seconds"]
    bound = BUDGET_PER_PROCESS_PAIR * args.workers
    print(f"\nat rest: {rate:.3f} commands a second (target <= {bound:g}): {'met' if rate <= bound else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
