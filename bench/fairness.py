"""Benchmark: fair share against FIFO dispatch: a key's backlog beside another's trickle; long tasks beside short ones.

    .venv/bin/python -m bench.fairness [--phases slots,stored,mixed] [--backlog 200] [--every 2] [--task-delay 1]
                                       [--stored-backlog 150] [--stored-max-active 200] [--baseline-tree PATH]
                                       [--mixed-seconds 300] [--mixed-weights 1:1]

Three phases (``--phases`` picks some, in this order), each beside FIFO in the same invocation.

Slot wait (``slots``): ``BFL_MAX_ACTIVE=4``, simulator tasks of ``--task-delay`` seconds, the Procfile's
web and one worker (whose sweep hands out freed slots). Key A queues ``--backlog`` jobs at once; key B queues one job
every ``--every`` seconds while any of A's jobs waits. Each job is recorded and offered a slot as
``POST /v1/jobs`` does (its owner passed to the slots), and a worker's sender sends it when it
gets one (the FIFO tree: a submit task). Figures: B's wait from its job's creation to BFL's acceptance (``submitted_at``), p50 and
p99; A's throughput (its jobs accepted by BFL per second, from the first to the last) and the
whole stack's (A's and B's jobs together, over the same time).

The same run goes three times, on the same machine one after the other: this tree (fair share);
this tree with B's jobs queued as key A's (one owner: FIFO per model, with everything else this
tree has, such as the workers' senders taking freed slots at once); and the tree at ``--baseline-tree``, a
checkout of 194e639 (FIFO per model, no owners), made with ``git worktree add`` when missing. Each
run is a process of its own with that tree first on its ``PYTHONPATH`` (for its web and worker too).

To stored (``stored``): the workers' tasks, not the slots. ``BFL_MAX_ACTIVE`` of ``--stored-max-active``
(200: more than A's and B's jobs together, so none waits for a slot and A's results reach fluxhook
close together, to queue in the worker's downloads), the Procfile's web and ONE worker, simulator
tasks of ``--task-delay`` seconds and JPEGs of 1 MB. Key A queues ``--stored-backlog`` jobs at once; key B
one every ``--every`` seconds until all of A's are stored. Each key is an app key of its own (on this
tree), so its jobs' downloads are in its own turn. Figures: B's wait from its job's creation to
``stored`` (``completed_at``), p50 and p99; A's throughput (its jobs stored per second, from the first
stored to the last). On this tree and on the baseline tree, both with this tree's simulator.

Mixed lengths (``mixed``): the same web, worker and ``BFL_MAX_ACTIVE=4``, key A's tasks of 30 s beside key B's
of 1 s (``[seconds-30]``, ``[seconds-1]`` in their prompts), each key topped up to keep jobs waiting,
for ``--mixed-seconds``. Figure: each key's share of the slot time, the seconds from BFL's acceptance of
its jobs (``submitted_at``) to BFL's end of them (``finished_at``; a job not ended counts to the end),
clipped to the window; with fair share each share should be within 10 % of the key's weight
(``--mixed-weights``). It runs on this tree and on the baseline tree, both with this tree's simulator
(the baseline's knows no ``[seconds-N]``).

Loopback only; nothing outside temporary directories changes (but the baseline checkout, when made).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "194e639"
BASELINE_TREE = Path("/tmp/fluxhook-194e639")
FAIR, ONE_OWNER, BASELINE = "fair share", "one owner", f"FIFO ({BASELINE_COMMIT})"
SLOTS, STORED, MIXED = "slots", "stored", "mixed"
PHASES = (SLOTS, STORED, MIXED)
MAX_ACTIVE = 4
TARGET_B_P99 = 1.5  # seconds: about the time for one slot to free here
TARGET_A_RATIO = 0.95
# To stored: slots for all of A's and B's jobs, so that A's results arrive together and the worker's downloads
# are what B waits behind; images the size of a generation, so that a download and its storing take a real time.
STORED_MAX_ACTIVE = 200
STORED_IMAGE_BYTES = 1_000_000
TARGET_STORED_B_P99 = 2.0  # seconds: B's 1 s task, its submission and one download ahead of its own
# Bounds on every loop of a run.
RUN_TIMEOUT = 600.0
MAX_B_JOBS = 300
# Mixed lengths: each key's task seconds, and the jobs each keeps waiting (B's 1 s tasks can take 4 a
# second; the top-up comes every half second).
MIXED_SECONDS = {"key_a": 30, "key_b": 1}
MIXED_WAITING = 20
MIXED_TOLERANCE = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", type=_phases, default=PHASES, metavar=",".join(PHASES),
                        help="the phases to run (default: all)")
    parser.add_argument("--backlog", type=int, default=200)
    parser.add_argument("--stored-backlog", type=int, default=150, help="key A's jobs in the to-stored phase")
    parser.add_argument("--stored-max-active", type=int, default=STORED_MAX_ACTIVE,
                        help="BFL_MAX_ACTIVE in the to-stored phase")
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--task-delay", type=float, default=1.0)
    parser.add_argument("--submit-delay", type=float, default=0.0,
                        help="to stored: seconds BFL takes to answer a submission (the real one: about 1)")
    parser.add_argument("--baseline-tree", type=Path, default=BASELINE_TREE)
    parser.add_argument("--mixed-seconds", type=float, default=300.0, help="the mixed-lengths window")
    parser.add_argument("--mixed-weights", type=_weights, default=(1.0, 1.0), metavar="A:B",
                        help="keys A's and B's weights in the mixed-lengths phase")
    parser.add_argument("--run", choices=PHASES, help=argparse.SUPPRESS)  # one run of a phase, in this process
    parser.add_argument("--one-owner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)  # host:port of the simulator a run uses
    args = parser.parse_args()
    if args.run == MIXED:
        print(json.dumps(run_mixed(args.sim, args.mixed_seconds, args.mixed_weights)), flush=True)
        return
    if args.run == STORED:
        print(json.dumps(run_stored(args.sim, args.stored_backlog, args.stored_max_active, args.every,
                                    args.task_delay, args.submit_delay, args.one_owner)), flush=True)
        return
    if args.run:
        print(json.dumps(run(args.backlog, args.every, args.task_delay, args.one_owner)), flush=True)
        return
    tree = ensure_baseline(args.baseline_tree)
    results, stored, mixed = {}, {}, {}
    if SLOTS in args.phases:
        for name, path, one_owner in runs(tree):
            _log(f"{name}: {args.backlog} jobs of key A at once, one of key B every {args.every:g} s ({path})")
            results[name] = run_in(path, args, SLOTS, one_owner)
    if STORED in args.phases:
        for name, path, one_owner in runs(tree):
            _log(f"{name}, to stored: {args.stored_backlog} jobs of key A at once, one of key B every "
                 f"{args.every:g} s, one worker ({path})")
            stored[name] = run_in(path, args, STORED, one_owner)
    if MIXED in args.phases:
        for name, path in ((FAIR, ROOT), (BASELINE, tree)):
            _log(f"{name}, mixed lengths: key A's 30 s tasks beside key B's 1 s tasks for {args.mixed_seconds:g} s "
                 f"({path})")
            mixed[name] = run_in(path, args, MIXED)
    if results:
        report(results, args)
    if stored:
        report_stored(stored, args)
    if mixed:
        report_mixed(mixed, args)


def _phases(text: str) -> tuple[str, ...]:
    named = {p.strip() for p in text.split(",") if p.strip()}
    if not named or named - set(PHASES):
        raise argparse.ArgumentTypeError(f"phases are among {', '.join(PHASES)}")
    return tuple(p for p in PHASES if p in named)


def _weights(text: str) -> tuple[float, float]:
    a, b = (float(w) for w in text.split(":"))
    if a <= 0 or b <= 0:
        raise ValueError("weights are positive")
    return a, b


def runs(tree: Path) -> list[tuple[str, Path, bool]]:
    """Each run: its name, its tree, whether B's jobs are queued as A's."""
    return [(FAIR, ROOT, False), (ONE_OWNER, ROOT, True), (BASELINE, tree, False)]


def ensure_baseline(tree: Path) -> Path:
    """The FIFO tree: reused if there (another run may have made it), else a detached worktree of 194e639."""
    if not (tree / "fluxhook" / "store" / "slots.py").exists():
        # Imported here, not at the top: a run's own process has another tree's devtools first on its path.
        from devtools.processes import require_tools

        require_tools("bench-fairness", "git")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE_COMMIT],
                       check=True, timeout=120)
    return tree


def run_in(tree: Path, args: argparse.Namespace, phase: str, one_owner: bool = False) -> dict:
    """One run of ``phase`` in its own process, with ``tree``'s code first on the path; its figures."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--run", phase, "--backlog", str(args.backlog),
               "--stored-backlog", str(args.stored_backlog), "--stored-max-active", str(args.stored_max_active),
               "--every", str(args.every), "--task-delay", str(args.task_delay),
               "--submit-delay", str(args.submit_delay),
               "--mixed-seconds", str(args.mixed_seconds), "--mixed-weights", ":".join(map(str, args.mixed_weights)),
               *(["--one-owner"] * one_owner)]
    timeout = RUN_TIMEOUT + 120 + (args.mixed_seconds if phase == MIXED else 0)
    simulator = None
    if phase != SLOTS:
        # This tree's simulator, whichever tree runs: the baseline's would ignore [seconds-N], and both
        # runs then get the same images.
        from devtools.processes import free_port, stop_process
        from devtools.stack import start_simulator

        port = free_port()
        simulator = start_simulator(port)
        command += ["--sim", f"127.0.0.1:{port}"]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    finally:
        if simulator is not None:
            stop_process(simulator)
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(backlog: int, every: float, task_delay: float, one_owner: bool) -> dict:
    """Start a stack from the tree on the path, drive both keys, and measure."""
    from bench.common import BenchStack
    from fluxhook.services import build_services

    stack = BenchStack("fairness", log_level="WARNING", BFL_MAX_ACTIVE=str(MAX_ACTIVE),
                       PYTHONPATH=os.environ["PYTHONPATH"])
    try:
        stack.start(workers=1)
        # Small images: the bench is about slots, not downloads.
        stack.sim_settings(task_delay=task_delay, scene_images=False, image_format="png")
        svc = build_services(_config_class().from_env(stack.env))
        return _drive(svc, stack, backlog, every, "key_a" if one_owner else "key_b", key_ids=_app_keys(svc))
    finally:
        stack.stop()
        stack.cleanup()


def run_stored(sim: str, backlog: int, max_active: int, every: float, task_delay: float, submit_delay: float,
               one_owner: bool) -> dict:
    """Start a stack from the tree on the path, on the simulator at ``sim`` (host:port), and measure B's
    wait to stored behind A's backlog of downloads."""
    from fluxhook.services import build_services

    stack = _stack_on(sim, "fairness-stored", max_active)
    try:
        stack.start(workers=1)
        # The simulator's own limit above the slots', so that BFL never answers 429 here.
        stack.sim_settings(task_delay=task_delay, submit_delay=submit_delay, max_active=max_active * 4,
                           scene_images=False, image_format="jpeg", image_bytes=STORED_IMAGE_BYTES)
        svc = build_services(_config_class().from_env(stack.env))
        return _drive(svc, stack, backlog, every, "key_a" if one_owner else "key_b", reached="completed_at",
                      key_ids=_app_keys(svc))
    finally:
        stack.stop()
        stack.cleanup()


def run_mixed(sim: str, window: float, weights: tuple[float, float]) -> dict:
    """Start a stack from the tree on the path, on the simulator at ``sim`` (host:port), and measure mixed lengths."""
    from fluxhook.services import build_services

    stack = _stack_on(sim, "fairness-mixed", MAX_ACTIVE)
    try:
        stack.start(workers=1)
        stack.sim_settings(scene_images=False, image_format="png")
        svc = build_services(_config_class().from_env(stack.env))
        return _drive_mixed(svc, stack, window, dict(zip(MIXED_SECONDS, weights, strict=True)))
    finally:
        stack.stop()
        stack.cleanup()


def _stack_on(sim: str, name: str, max_active: int):
    """A bench stack of the tree on the path whose BFL is the simulator at ``sim`` (host:port)."""
    from bench.common import BenchStack
    from devtools.stack import SIMULATOR_KEY

    return BenchStack(name, log_level="WARNING", BFL_MAX_ACTIVE=str(max_active), PYTHONPATH=os.environ["PYTHONPATH"],
                      BFL_API_KEY=SIMULATOR_KEY, BFL_API_BASE=f"http://{sim}", RESULT_HOST_ALLOWLIST=sim,
                      API_HOST_ALLOWLIST=sim)


def _config_class():
    try:
        from fluxhook.core.config import Config
    except ImportError:  # the FIFO tree, from before fluxhook/core/
        from fluxhook.config import Config
    return Config


def _app_keys(svc) -> dict[str, str] | None:
    """App keys for A and B, by owner name (their ids); None on the FIFO tree, which has none.

    The workers' lines know a job's owner from its record's app key, and a submission fails a job whose
    key does not exist: so here the owners are real keys, not just names given to the slots."""
    try:
        from fluxhook.lifecycle.key_admin import create_key
    except ImportError:
        try:
            from fluxhook.lifecycle.keys import create_key  # its name before key_admin.py
        except ImportError:  # the FIFO tree, from before fluxhook/lifecycle/
            return None
    return {owner: create_key(svc, {"name": f"bench {owner}"}, time.time())[0].id for owner in ("key_a", "key_b")}


def _queuer(svc, key_ids: dict[str, str] | None = None):
    """``queue(owner, n, prompt)``: a job recorded and offered a slot as ``POST /v1/jobs`` does; its id.
    Also whether the slots know owners (the FIFO tree's do not: there every job is queued alike).
    With ``key_ids`` (owner name -> app key id), a job is its owner's key's, as one made with that key."""
    try:
        from fluxhook.core import job as st
        from fluxhook.core.accounts import pool_for
        from fluxhook.core.job import Job, new_job_id
    except ImportError:  # the FIFO tree, from before fluxhook/core/
        from fluxhook import transitions as st
        from fluxhook.job import Job, new_job_id
        from fluxhook.limits import pool_for
    owned = "key_id" in inspect.signature(svc.slots.acquire).parameters
    # This tree: a job joins its line without a slot and a worker's sender takes one for it (worker/sending.py).
    # (``send_here=`` since the glossary's renames, ``take=`` before.)
    acquiring = inspect.signature(svc.slots.acquire).parameters
    hand = next((name for name in ("send_here", "take") if name in acquiring), None)
    senders = hand is not None
    if not senders:  # the FIFO tree: a job handed a slot is sent by a submit task on RQ
        try:
            from fluxhook.lifecycle.steps.enqueueing import enqueue_submits
        except ImportError:  # from before fluxhook/lifecycle/
            from fluxhook.tasks import enqueue_submits
        submits_to = svc if "svc" in inspect.signature(enqueue_submits).parameters else svc.control_queue

    def queue(owner: str, n: int, prompt: str = "") -> str:
        now = time.time()
        key_id = (key_ids or {}).get(owner)
        job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro",
                  input={"prompt": f"{owner} {n}{prompt}"},
                  pool=pool_for("flux-2-pro", svc.config.bfl_model_limits), created_at=now, updated_at=now,
                  **({"key_id": key_id} if key_id else {}))
        svc.jobs.create(job)
        if senders:
            # A tree whose acquire takes no key_id takes the owner from the job's record: its key's (``key_ids``).
            svc.slots.acquire(job, *([key_id or owner] if owned else []), **{hand: False})
        elif svc.slots.acquire(job, **({"key_id": key_id or owner} if owned else {})):
            enqueue_submits(submits_to, [job.id])
        return job.id

    return queue, owned


def _drive(svc, stack, backlog: int, every: float, b_owner: str, reached: str = "submitted_at",
           key_ids: dict[str, str] | None = None) -> dict:
    """A's backlog at once, B's trickle while any of A's jobs has not ``reached`` its step (the job field that
    says when: ``submitted_at``, BFL's acceptance; ``completed_at``, stored); the times they did."""
    from bench.common import read_jobs
    from fluxhook.store.keys import KEYS

    queue, _ = _queuer(svc, key_ids)
    started = time.time()
    a_jobs = [queue("key_a", n) for n in range(backlog)]
    b_jobs: list[str] = []
    stop = threading.Event()

    def trickle() -> None:
        n = 0
        while not stop.is_set() and n < MAX_B_JOBS:
            b_jobs.append(queue(b_owner, n))
            n += 1
            stop.wait(every)

    b = threading.Thread(target=trickle, daemon=True)
    b.start()
    db = stack.redis()

    def reached_at(ids: list[str]) -> list[float | None]:
        pipe = db.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(KEYS.job(job_id), reached)
        return [float(v) if v else None for v in pipe.execute()]

    deadline = time.monotonic() + RUN_TIMEOUT
    while not all(reached_at(a_jobs)):  # B goes on while any of A's jobs waits
        if time.monotonic() > deadline:
            raise TimeoutError(f"key A's backlog did not reach {reached} in time")
        time.sleep(0.5)
    stop.set()
    b.join(timeout=10)
    while not all(reached_at(list(b_jobs))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"key B's jobs did not reach {reached} in time")
        time.sleep(0.5)
    if reached == "completed_at":
        # completed_at is any end's time: a failed download would pass for a fast one.
        ends = [r["status"] for r in read_jobs(db, a_jobs + b_jobs, ("status",))]
        if any(status != "stored" for status in ends):
            raise RuntimeError(f"jobs ended other than stored: {sorted(set(ends) - {'stored'})}")
    a_at, b_at = reached_at(a_jobs), reached_at(list(b_jobs))
    created = [float(db.hget(KEYS.job(j), "created_at")) for j in b_jobs]
    a_end = max(a_at)
    figures = {"b_waits": [s - c for s, c in zip(b_at, created, strict=True)], "a_seconds": a_end - started,
               "a_span": a_end - min(a_at), "a_jobs": len(a_jobs), "b_in_a_time": sum(1 for s in b_at if s <= a_end),
               "b_jobs": len(b_jobs)}
    if reached == "completed_at":
        # Where B's time to stored went: to BFL's acceptance (a slot, the submission), and from BFL's end to
        # stored (the callback, the downloads ahead of its own, its own).
        times = [{k: float(v) for k, v in r.items()}
                 for r in read_jobs(db, b_jobs, ("created_at", "submitted_at", "finished_at", "completed_at"))]
        figures["b_to_bfl"] = [t["submitted_at"] - t["created_at"] for t in times]
        figures["b_after_bfl"] = [t["completed_at"] - t["finished_at"] for t in times]
    return figures


def _drive_mixed(svc, stack, window: float, weights: dict[str, float]) -> dict:
    from bench.common import read_jobs

    key_ids = _app_keys(svc)
    queue, owned = _queuer(svc, key_ids)
    if owned or key_ids:
        for owner, weight in weights.items():
            svc.slots.set_share((key_ids or {}).get(owner, owner), weight, None)
    db = stack.redis()
    jobs: dict[str, list[str]] = {owner: [] for owner in MIXED_SECONDS}
    waiting: dict[str, list[str]] = {owner: [] for owner in MIXED_SECONDS}
    started = time.time()
    end = started + window
    while time.time() < end:
        for ids in waiting.values():
            ids[:] = [j for j, r in zip(ids, read_jobs(db, ids, ("submitted_at",)), strict=True) if not r["submitted_at"]]
        # One of each key in turn, so that FIFO's line (by creation) alternates the keys as fair share's turns would.
        while any(len(ids) < MIXED_WAITING for ids in waiting.values()):
            for owner, ids in waiting.items():
                if len(ids) < MIXED_WAITING:
                    ids.append(queue(owner, len(jobs[owner]), f" [seconds-{MIXED_SECONDS[owner]}]"))
                    jobs[owner].append(ids[-1])
        time.sleep(0.5)
    end = min(end, time.time())

    def slot_time(record: dict) -> float:
        if not record["submitted_at"]:
            return 0.0
        finished = float(record["finished_at"]) if record["finished_at"] else end
        return max(0.0, min(finished, end) - max(float(record["submitted_at"]), started))

    records = {owner: read_jobs(db, ids, ("submitted_at", "finished_at")) for owner, ids in jobs.items()}
    return {"window": end - started, "weights": weights, "owned": owned or bool(key_ids),
            "slot_seconds": {owner: sum(map(slot_time, rs)) for owner, rs in records.items()},
            "tasks": {owner: sum(1 for r in rs if slot_time(r) > 0) for owner, rs in records.items()}}


def report(results: dict[str, dict], args: argparse.Namespace) -> None:
    from bench.common import Row, Section, fmt, percentile, print_report

    def figures(r: dict) -> dict[str, float]:
        return {"p50": percentile(r["b_waits"], 50), "p99": percentile(r["b_waits"], 99),
                "a_rate": r["a_jobs"] / r["a_seconds"], "all_rate": (r["a_jobs"] + r["b_in_a_time"]) / r["a_seconds"]}

    f, o, b = (figures(results[name]) for name in (FAIR, ONE_OWNER, BASELINE))
    section = Section(f"fair share: BFL_MAX_ACTIVE={MAX_ACTIVE}, tasks of {args.task_delay:g} s, key A {args.backlog} "
                      f"jobs at once, key B one every {args.every:g} s; baseline {BASELINE}, then (one owner) this "
                      "tree with B's jobs queued as A's")
    rows = [
        Row("B's wait to BFL, p50 (s)", fmt(f["p50"], 2), fmt(b["p50"], 2), fmt(b["p50"] / f["p50"], 0, "x faster")),
        Row("B's wait to BFL, p99 (s)", fmt(f["p99"], 2), fmt(b["p99"], 2), fmt(b["p99"] / f["p99"], 0, "x faster"),
            f"<= {TARGET_B_P99:g} s", f["p99"] <= TARGET_B_P99),
        Row("  (one owner) B's wait, p50 / p99 (s)", f"{fmt(f['p50'], 2)} / {fmt(f['p99'], 2)}",
            f"{fmt(o['p50'], 2)} / {fmt(o['p99'], 2)}"),
        Row("A's throughput (jobs/s)", fmt(f["a_rate"], 2), fmt(b["a_rate"], 2), fmt(f["a_rate"] / b["a_rate"], 2, "x"),
            f">= {TARGET_A_RATIO:.2f}x", f["a_rate"] >= TARGET_A_RATIO * b["a_rate"]),
        Row("  (one owner) A's throughput (jobs/s)", fmt(f["a_rate"], 2), fmt(o["a_rate"], 2),
            fmt(f["a_rate"] / o["a_rate"], 2, "x")),
        Row("A's and B's jobs together (jobs/s)", fmt(f["all_rate"], 2), fmt(b["all_rate"], 2),
            fmt(f["all_rate"] / b["all_rate"], 2, "x")),
        Row("  (one owner) together (jobs/s)", fmt(f["all_rate"], 2), fmt(o["all_rate"], 2),
            fmt(f["all_rate"] / o["all_rate"], 2, "x"), f">= {TARGET_A_RATIO:.2f}x",
            f["all_rate"] >= TARGET_A_RATIO * o["all_rate"]),
    ]
    section.rows = rows
    counts = ", ".join(f"{results[n]['b_in_a_time']} of {results[n]['b_jobs']} ({n})"
                       for n in (FAIR, ONE_OWNER, BASELINE))
    section.notes = [
        f"runs one after the other on this machine; baseline tree {args.baseline_tree}",
        f"B's jobs accepted by BFL while A's backlog lasted: {counts}",
        "A's throughput: its jobs over the time from their submission to BFL's acceptance of the last; with fair "
        "share B's jobs take their turns meanwhile (about 1 / (every * jobs per second) of the turns), which FIFO "
        "gives B only after A's backlog. 'Together' counts A's jobs and B's accepted over the same time: the "
        "slots kept busy, whoever's jobs they hold",
        f"load average at the end: {_loadavg()}",
    ]
    print_report([section])


def report_stored(results: dict[str, dict], args: argparse.Namespace) -> None:
    from bench.common import Row, Section, fmt, percentile, print_report

    def figures(r: dict) -> dict[str, float]:
        # First stored to last: A's rate through the worker, without the wait for its first result.
        return {"p50": percentile(r["b_waits"], 50), "p99": percentile(r["b_waits"], 99),
                "to_bfl": percentile(r["b_to_bfl"], 99), "after_bfl": percentile(r["b_after_bfl"], 99),
                "a_rate": (r["a_jobs"] - 1) / r["a_span"]}

    f, o, b = (figures(results[name]) for name in (FAIR, ONE_OWNER, BASELINE))
    section = Section(f"to stored: one worker, BFL_MAX_ACTIVE={args.stored_max_active}, tasks of "
                      f"{args.task_delay:g} s, submissions answered after {args.submit_delay:g} s, "
                      f"{STORED_IMAGE_BYTES / 1e6:g} MB JPEGs, key A {args.stored_backlog} jobs "
                      f"at once, key B one every {args.every:g} s; baseline {BASELINE}")
    section.rows = [
        Row("B's wait to stored, p50 (s)", fmt(f["p50"], 2), fmt(b["p50"], 2), fmt(b["p50"] / f["p50"], 0, "x faster")),
        Row("B's wait to stored, p99 (s)", fmt(f["p99"], 2), fmt(b["p99"], 2), fmt(b["p99"] / f["p99"], 0, "x faster"),
            f"<= {TARGET_STORED_B_P99:g} s", f["p99"] <= TARGET_STORED_B_P99),
        Row("  of which: to BFL / BFL's end to stored, p99 (s)", f"{fmt(f['to_bfl'], 2)} / {fmt(f['after_bfl'], 2)}",
            f"{fmt(b['to_bfl'], 2)} / {fmt(b['after_bfl'], 2)}"),
        Row("A's throughput to stored (jobs/s)", fmt(f["a_rate"], 2), fmt(b["a_rate"], 2),
            fmt(f["a_rate"] / b["a_rate"], 2, "x"), "(info)"),
        Row(f"A's throughput, beside {ONE_OWNER} (jobs/s)", fmt(f["a_rate"], 2), fmt(o["a_rate"], 2),
            fmt(f["a_rate"] / o["a_rate"], 2, "x"), f">= {TARGET_A_RATIO:.2f}x",
            f["a_rate"] >= TARGET_A_RATIO * o["a_rate"]),
        Row(f"B's wait to stored, p99, {ONE_OWNER} (s)", fmt(o["p99"], 2), fmt(b["p99"], 2)),
    ]
    counts = ", ".join(f"{results[n]['b_in_a_time']} of {results[n]['b_jobs']} ({n})" for n in (FAIR, ONE_OWNER, BASELINE))
    section.notes = [
        "B's wait: from its job's creation to its record's completed_at (stored); A's throughput: its jobs "
        "stored per second from its first stored to its last. Slots are many, so A's results arrive close "
        "together and B's result waits behind A's downloads in the one worker: on FIFO, all of them",
        "of which: B's wait from creation to BFL's acceptance (a slot, the submission: submitted_at), and from "
        "BFL's end (finished_at) to stored (the callback, the downloads ahead of its own, its own), each's p99. "
        "B's submissions and downloads are work-line tokens like A's, taken in turn across keys",
        f"A's throughput is held to {ONE_OWNER}'s: this tree with B's jobs queued as key A's, so the same code "
        f"taking them first in, first out (the price of fairness itself); {BASELINE} is an older tree without "
        "much of today's per-job work (usage, timelines, slot time, waiting reasons), shown for information",
        f"B's jobs stored while A's lasted: {counts}",
        f"both runs on this tree's simulator; A and B are app keys of their own on this tree; baseline tree "
        f"{args.baseline_tree}",
        f"load average at the end: {_loadavg()}",
    ]
    print_report([section])


def report_mixed(results: dict[str, dict], args: argparse.Namespace) -> None:
    from bench.common import Row, Section, fmt, print_report

    fair, fifo = results[FAIR], results[BASELINE]
    weights = fair["weights"]

    def share(r: dict, owner: str) -> float:
        return r["slot_seconds"][owner] / (sum(r["slot_seconds"].values()) or 1)

    def busy(r: dict) -> float:
        return sum(r["slot_seconds"].values()) / (MAX_ACTIVE * r["window"])

    section = Section(f"mixed lengths: BFL_MAX_ACTIVE={MAX_ACTIVE}, key A's tasks of {MIXED_SECONDS['key_a']} s, "
                      f"key B's of {MIXED_SECONDS['key_b']} s, both kept waiting, {args.mixed_seconds:g} s; "
                      f"baseline {BASELINE}")
    for owner, label in (("key_a", "A"), ("key_b", "B")):
        due = weights[owner] / sum(weights.values())
        got = share(fair, owner)
        section.rows.append(Row(f"{label}'s share of the slot time (weight {weights[owner]:g})", fmt(got, 3),
                                fmt(share(fifo, owner), 3), "", f"{due * (1 - MIXED_TOLERANCE):.3f}-"
                                f"{due * (1 + MIXED_TOLERANCE):.3f}", abs(got - due) <= MIXED_TOLERANCE * due))
    section.rows += [
        Row("  A's / B's tasks at BFL in the window", f"{fair['tasks']['key_a']} / {fair['tasks']['key_b']}",
            f"{fifo['tasks']['key_a']} / {fifo['tasks']['key_b']}"),
        Row("  slots busy at BFL (share of 4 x the window)", fmt(busy(fair), 3), fmt(busy(fifo), 3),
            fmt(busy(fair) / busy(fifo), 2, "x")),
    ]
    section.notes = [
        "slot time: from BFL's acceptance of a job (submitted_at) to its end at BFL (finished_at), clipped to the "
        "window; a job not ended by then counts to the end. The baseline has no owners or weights: FIFO gives "
        "the keys turns alike, so A's long tasks hold the slots",
        f"both runs on this tree's simulator; windows {fmt(fair['window'], 0)} s and {fmt(fifo['window'], 0)} s",
        f"load average at the end: {_loadavg()}",
    ]
    print_report([section])


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    main()
