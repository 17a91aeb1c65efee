"""Benchmark: another key's poll beside one key's backlog of overdue polls (the check line's turns across keys).

    .venv/bin/python -m bench.check_order [--backlog 400] [--b-jobs 5] [--every 5] [--poll-delay 0.3]
                                          [--baseline-tree PATH]

The Procfile's web and ONE worker (WORKER_CHECK_CONCURRENCY=2), the simulator answering each poll
(``GET /v1/get_result``) after ``--poll-delay`` s as BFL does (about 0.3 s) and dropping every callback, so
that a job is followed by polls alone. Key A tracks (``POST /v1/jobs/track``) ``--backlog`` tasks submitted
straight to the simulator that stay Pending: their first polls come due together ten seconds later, and
two checkers at 0.3 s a poll take a minute over them (and, each polled again ten seconds after, the line
never empties). Once A's first poll is made, key B tracks one task every ``--every`` s (and a fraction of the
sweep's second more, so that B's polls come due across it), ``--b-jobs`` in all.
Figure: for each of B's jobs, from when its first poll was due (its score in the due index, read as it was
tracked) to that poll's answer (its timeline's poll entry); median and max. And the same from the sweep's
claim of it (the due index's score moved a lease ahead, read every 10 ms from its due time), the sweep's
round of up to a second left out: the checks ahead of it and its own. Also A's polls a second over
the same time (the checkers' throughput) and Redis commands per poll made (INFO commandstats over that time,
every process's command: sweep, line or RQ queue, check, timeline; less the bench's own reads).

It runs on this tree (the check line: turns across keys, ``store/check_line.py``) and on the tree at
``--baseline-tree``, a checkout of a52e7d1 (checks as RQ tasks in ``fluxhook-control``, first in, first
out), made with ``git worktree add`` when missing; both in the same invocation, one after the other, each
a process of its own with its tree first on ``PYTHONPATH`` (for its web and worker too) and each on a fresh
simulator of this tree (the baseline's has no ``poll_delay``). Not part of the test suite; loopback only, it
changes nothing outside temporary directories (but the baseline checkout, when made).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "a52e7d1"
BASELINE_TREE = Path(f"/tmp/fluxhook-{BASELINE_COMMIT}")
LINE, BASELINE = "check line", f"RQ FIFO ({BASELINE_COMMIT})"
MODEL = "flux-2-pro"
# B's poll comes due behind A's backlog: within one sweep (SWEEP_INTERVAL, 1 s) it is in line, then it waits for a
# checker to free (one poll) and makes its own (another): 1.6 s at 0.3 s a poll; the rest is this machine's margin.
TARGET_B_MAX = 2.0
# Bounds on a run's waits: B's last first poll behind the baseline's backlog comes within about two minutes.
RUN_TIMEOUT = 600.0


class _Own:
    """The Redis commands this bench sends itself, to leave them out of fluxhook's (INFO counts every client's)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


OWN = _Own()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.check_order", description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=400, help="tasks key A tracks at once")
    parser.add_argument("--b-jobs", type=int, default=5, help="tasks key B tracks, one every --every s")
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--poll-delay", type=float, default=0.3, help="seconds BFL takes to answer a poll")
    parser.add_argument("--baseline-tree", type=Path, default=BASELINE_TREE)
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # one run, in this process
    parser.add_argument("--sim", help=argparse.SUPPRESS)  # host:port of the simulator a run uses
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.sim, args.backlog, args.b_jobs, args.every, args.poll_delay)), flush=True)
        return
    from bench.common import exit_on_sigterm

    exit_on_sigterm()
    tree = ensure_baseline(args.baseline_tree)
    started = time.monotonic()
    results = {}
    for name, path in ((LINE, ROOT), (BASELINE, tree)):
        _log(f"{name}: key A tracks {args.backlog} tasks, then key B one every {args.every:g} s ({path})")
        results[name] = run_in(path, args)
    report(results, args, time.monotonic() - started)


def ensure_baseline(tree: Path) -> Path:
    """The RQ tree: reused if there (another run may have made it), else a detached worktree of a52e7d1."""
    if not (tree / "fluxhook").is_dir():
        from devtools.processes import require_tools

        require_tools("bench-check-order", "git")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE_COMMIT],
                       check=True, timeout=120)
    return tree


def run_in(tree: Path, args: argparse.Namespace) -> dict:
    """One run in its own process, with ``tree``'s code first on the path, on a fresh simulator of this tree; its
    figures."""
    from devtools.processes import free_port, stop_process
    from devtools.stack import start_simulator

    env = dict(os.environ, PYTHONPATH=str(tree))
    port = free_port()
    # A fresh one per run: the first run's tasks stay Pending, and would count against the second's account.
    simulator = start_simulator(port)
    command = [sys.executable, str(Path(__file__).resolve()), "--run", "--sim", f"127.0.0.1:{port}",
               "--backlog", str(args.backlog), "--b-jobs", str(args.b_jobs), "--every", str(args.every),
               "--poll-delay", str(args.poll_delay)]
    try:
        # Its progress and errors straight to this process's stderr; its figures, the last line of its stdout.
        done = subprocess.run(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True,
                              timeout=RUN_TIMEOUT + 120)
    finally:
        stop_process(simulator)
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed (exit {done.returncode}); its stderr is above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sim: str, backlog: int, b_jobs: int, every: float, poll_delay: float) -> dict:
    """Start a stack from the tree on the path, on the simulator at ``sim`` (host:port); drive both keys, measure."""
    from bench.common import BenchStack
    from devtools.stack import SIMULATOR_KEY

    stack = BenchStack("check-order", log_level="WARNING", PYTHONPATH=os.environ["PYTHONPATH"],
                       BFL_API_KEY=SIMULATOR_KEY, BFL_API_BASE=f"http://{sim}", RESULT_HOST_ALLOWLIST=sim,
                       API_HOST_ALLOWLIST=sim, WORKER_CHECK_CONCURRENCY="2")
    try:
        stack.start(workers=1)
        # Room at the account for every task, all Pending until the run ends (no pending_limit).
        stack.sim_settings(poll_delay=poll_delay, drop_callbacks=True, max_active=backlog + b_jobs + 10,
                           pending_limit=None)
        return _drive(stack, backlog, b_jobs, every)
    finally:
        stack.stop()
        stack.cleanup()


def _drive(stack, backlog: int, b_jobs: int, every: float) -> dict:
    import requests

    from bench.common import thread_map

    db = stack.redis()
    a_token, b_token = _key_token(stack, "A"), _key_token(stack, "B")

    def track(session: requests.Session, token: str, prompt: str) -> tuple[str, float]:
        """A task submitted straight to BFL, then tracked with ``token``'s key: the job's id and when its first poll
        is due (the due index's score, read before the sweep can claim it ten seconds on)."""
        task = session.post(f"{stack.sim_base}/v1/{MODEL}", json={"prompt": prompt},
                            headers={"x-key": stack.env["BFL_API_KEY"]}, timeout=30)
        task.raise_for_status()
        made = session.post(f"{stack.base_url}/v1/jobs/track", json={"bfl_id": task.json()["id"], "model": MODEL},
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if made.status_code != 201:
            raise RuntimeError(f"POST /v1/jobs/track answered {made.status_code}: {made.text[:200]}")
        job_id = made.json()["id"]
        OWN.add()
        return job_id, float(db.zscore(_due_key(), job_id))

    _log(f"key A tracks {backlog} Pending tasks")
    a_jobs = thread_map(lambda session, n: track(session, a_token, f"[pending] A backlog {n}"), range(backlog),
                        6)
    a_due = [due for _, due in a_jobs]
    _wait(lambda: stack.sim_stats()["polls_total"] > 0, "A's first poll")
    line = _LineSampler(db)
    line.start()
    polls_before, calls_before, window_start = stack.sim_stats()["polls_total"], _calls(db), time.time()
    own_before = OWN.count
    b: list[tuple[str, float]] = []
    claims: list[_ClaimWatch] = []
    session = requests.Session()
    session.trust_env = False  # every request of a bench goes to 127.0.0.1
    for n in range(b_jobs):
        _log(f"key B tracks task {n + 1} of {b_jobs}")
        b.append(track(session, b_token, f"[pending] B {n}"))
        claims.append(_ClaimWatch(stack.redis(), *b[-1]))
        claims[-1].start()
        if n < b_jobs - 1:
            # A fraction of the sweep's second more each time, so that B's polls come due across that second (every
            # second's sweep puts what came due in line): at a whole number of seconds apart they would all wait alike.
            time.sleep(every + _sweep_interval() / b_jobs)
    b_polled = [_first_poll(db, job_id) for job_id, _ in b]
    polls_after, calls_after, window_end = stack.sim_stats()["polls_total"], _calls(db), time.time()
    line.stop()
    for watch in claims:
        watch.join(timeout=5)
    polls = polls_after - polls_before
    # fluxhook's commands alone: less this bench's own reads meanwhile (its INFO included).
    commands = calls_after - calls_before - (OWN.count - own_before)
    return {
        "b_waits": [polled - due for polled, (_, due) in zip(b_polled, b, strict=True)],
        "b_line": [line.at(due) for _, due in b],
        # From the sweep's claim (the job put in line, or in RQ's queue) to the poll's answer: the checks ahead of it
        # and its own, without the sweep's round.
        "b_in_line": [None if watch.claimed is None else polled - watch.claimed
                      for polled, watch in zip(b_polled, claims, strict=True)],
        "a_due_spread": max(a_due) - min(a_due),
        "polls": polls, "poll_rate": polls / (window_end - window_start),
        "commands_per_poll": commands / polls if polls else None,
        "window": window_end - window_start,
    }


def _sweep_interval() -> float:
    from fluxhook.core.live import SWEEP_INTERVAL

    return SWEEP_INTERVAL


def _key_token(stack, name: str) -> str:
    made = stack.api_session().post(f"{stack.base_url}/v1/keys", json={"name": f"bench check order {name}"},
                                    timeout=10)
    made.raise_for_status()
    return made.json()["key"]


def _due_key() -> str:
    from fluxhook.store.keys import KEYS

    return KEYS.due


def _line_length(db) -> int:
    """Checks waiting for a checker: the check line's (this tree), or the RQ queue's of checks (the baseline)."""
    from fluxhook.store.keys import KEYS

    OWN.add()
    if hasattr(KEYS, "check_line"):
        # The default account's line: a method since each account has its own, a property before.
        line = KEYS.check_line
        return int(db.zcard(line() if callable(line) else line))
    # The baseline's queue of check tasks (CONTROL_QUEUE_NAME, its fluxhook/store/queues.py), by RQ's key of it.
    return int(db.llen("rq:queue:fluxhook-control"))


class _LineSampler(threading.Thread):
    """The line's length every half second, to say how many checks each of B's found ahead of it when due."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db = db
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.time(), _line_length(self.db)))
            self._stop_event.wait(0.5)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def at(self, when: float) -> int | None:
        """The sample nearest ``when``."""
        return min(self.samples, key=lambda s: abs(s[0] - when))[1] if self.samples else None


class _ClaimWatch(threading.Thread):
    """When the sweep claimed a job come due: its score in the due index moved a lease ahead, read every 10 ms from
    its due time until it moves (a few dozen reads: the sweep runs every second). The check moves it again as it
    starts, a lease from then: a check begun within 10 ms of the claim could be read as the claim, a few ms late."""

    def __init__(self, db, job_id: str, due: float):
        super().__init__(daemon=True)
        self.db, self.job_id, self.due = db, job_id, due
        self.claimed: float | None = None

    def run(self) -> None:
        time.sleep(max(0.0, self.due - 0.05 - time.time()))
        key, lease = _due_key(), _claim_lease()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            OWN.add()
            score = self.db.zscore(key, self.job_id)
            # A claim is a lease (90 s) ahead of the sweep's time; the job's next poll, once checked, 10 s at most.
            if score is not None and score > self.due + lease / 2:
                self.claimed = score - lease
                return
            time.sleep(0.01)


def _claim_lease() -> float:
    """The lease the sweep claims a due job for, under the name the tree imported has it: CLAIM_LEASE, or an older
    tree's CHECK_LEASE or CHECK_CLAIM_LEASE (the baseline's)."""
    from fluxhook.core import holds

    names = vars(holds)
    return float(next(names[name] for name in ("CLAIM_LEASE", "CHECK_LEASE", "CHECK_CLAIM_LEASE") if name in names))


def _first_poll(db, job_id: str) -> float:
    """When the job's first poll was answered: its timeline's earliest poll entry (recorded once BFL answered)."""
    from fluxhook.store.keys import KEYS

    def polled() -> float | None:
        OWN.add()
        entries = [json.loads(e) for e in db.lrange(KEYS.timeline(job_id), 0, -1)]
        return min((e["at"] for e in entries if e["kind"] == "poll"), default=None)

    return _wait(polled, f"job {job_id}'s first poll")


def _calls(db) -> int:
    OWN.add()
    return sum(int(stats["calls"]) for stats in db.info("commandstats").values())


def _wait(condition, message: str):
    from devtools.processes import wait_until

    return wait_until(condition, timeout=RUN_TIMEOUT, interval=0.1, message=message)


def report(results: dict[str, dict], args: argparse.Namespace, seconds: float) -> None:
    from bench.common import Row, Section, fmt, loadavg, median, print_report

    new, old = results[LINE], results[BASELINE]

    def ratio(a: float, b: float) -> str:
        return fmt(b / a, 0, "x sooner") if a > 0 else ""

    section = Section(f"checks: key B's first poll beside key A's {args.backlog} overdue polls, one worker "
                      f"(2 checkers), polls answered after {args.poll_delay:g} s; baseline {BASELINE}")
    section.rows = [
        Row("B's first poll: due -> answered, median s", fmt(median(new["b_waits"]), 2), fmt(median(old["b_waits"]), 2),
            ratio(median(new["b_waits"]), median(old["b_waits"]))),
        Row("B's first poll: due -> answered, max s", fmt(max(new["b_waits"]), 2), fmt(max(old["b_waits"]), 2),
            ratio(max(new["b_waits"]), max(old["b_waits"])), f"<= {TARGET_B_MAX:g}",
            max(new["b_waits"]) <= TARGET_B_MAX),
        Row("  the same from the sweep's claim (in line) -> answered, max s", fmt(_most(new["b_in_line"]), 2),
            fmt(_most(old["b_in_line"]), 2), ratio(_most(new["b_in_line"]), _most(old["b_in_line"]))),
        Row("(info) polls a second meanwhile (the checkers' throughput)", fmt(new["poll_rate"], 2),
            fmt(old["poll_rate"], 2), fmt(new["poll_rate"] / old["poll_rate"], 2, "x")),
        Row("(info) Redis commands per poll made meanwhile", fmt(new["commands_per_poll"], 1),
            fmt(old["commands_per_poll"], 1)),
    ]
    section.notes = [
        f"each of B's {args.b_jobs} jobs, one every {args.every:g} s (and a {args.b_jobs}th of a second more) from "
        f"A's first poll; its wait includes the sweep's round (up to 1 s) and its own poll ({args.poll_delay:g} s). "
        "Each: "
        + "; ".join(f"{name} " + ", ".join(fmt(w, 2) for w in r["b_waits"]) for name, r in results.items()),
        "from the sweep's claim (in line) to the poll's answer, each: "
        + "; ".join(f"{name} " + ", ".join(fmt(w, 2) for w in r["b_in_line"]) for name, r in results.items()),
        "checks waiting in line (A's) when each of B's came due: "
        + "; ".join(f"{name} " + ", ".join(str(n) for n in r["b_line"]) for name, r in results.items()),
        "polls and commands over the time B's jobs were tracked and first polled: "
        + "; ".join(f"{name} {r['polls']} polls in {r['window']:.0f} s" for name, r in results.items())
        + "; commands are fluxhook's, every process's (sweep, line or RQ queue, checks, timeline), less this "
        "bench's own reads",
        f"A's first polls came due within {new['a_due_spread']:.1f} s ({LINE}), {old['a_due_spread']:.1f} s "
        f"({BASELINE}); runs one after the other, each on a fresh simulator of this tree; baseline tree "
        f"{args.baseline_tree}; {seconds:.0f} s in all; load average at the end: {loadavg()}",
    ]
    print_report([section], spaced=True)


def _most(values: list[float | None]) -> float:
    """The largest of the values read (a claim not seen within 30 s of its due time is left out)."""
    found = [v for v in values if v is not None]
    return max(found) if found else float("nan")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
