"""Benchmark: callbacks and job reads while slow clients attack the web process, beside the code before it.

    .venv/bin/python -m bench.hostile [--samples 60] [--hold 35] [--old-tree /tmp/fluxhook-194e639]
                                      [--fill-old-tree /tmp/fluxhook-fd1f8a1]

The Procfile's web process alone (2 processes, no proxy in front) with the BFL simulator. For each
attack (none; 300 slowloris + 50 slow bodies, devtools/hostile_clients.py: heads and bodies sent a
byte a second, no credentials, each connection the server closes replaced at once), the bench
sends ``--samples`` signed callbacks (``Pending`` reports for submitted jobs) and as many
``GET /v1/jobs/{id}``, one at a time, each on a new connection, timing each answer (capped at
``--timeout``: an answer that does not come in time counts as that long). The attack lasts
``--hold`` seconds at least; the longest time the server kept any hostile connection open is
reported (one still open when the attack ends counts as held to the end).

Then the disk fill (docs/operating.md, bodies cannot fill the disk): ``--fill-connections`` clients (20) each
send ``--fill-mib`` MiB (200) of a body announced as 256 MiB at once, then a byte every 8 s, to
/signin, to /healthz (a GET with a body) and to /v1/jobs with a forged key in turn (none with
credentials); one the server closes comes back a second later. Meanwhile the same callbacks and
reads are timed, and the bytes each web process holds in spool files are sampled from outside
(the sizes of the files under its TMPDIR it holds open, from /proc, every 0.1 s), against
``MAX_SPOOL_BYTES`` (its default, 1 GiB per web process). The attack runs in a process of its own.

fluxhook: this tree. Baseline, in the same run: the tree at ``--old-tree`` (a checkout of commit
194e639, made with ``git worktree add`` when missing), its Procfile's web process run with
this virtual environment; for the disk fill, the tree at ``--fill-old-tree`` (fd1f8a1, the code
before the spool limits: 194e639 spooled nothing, its threads read bodies from the socket).
Everything listens on 127.0.0.1. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import subprocess
import time
from collections import Counter
from functools import partial
from pathlib import Path

import requests

from devtools.hostile_clients import MIB, Attack, DiskFill, spooled_bytes
from devtools.processes import ROOT, require_tools, start_process, wait_until
from devtools.stack import procfile_commands
from fluxhook.core import signing
from fluxhook.core.config import field_default

from .common import (
    BenchStack,
    Row,
    Section,
    create_jobs,
    descendants,
    fmt,
    log,
    percentile,
    print_report,
)

BASELINE_COMMIT = "194e639"
# The code before the spool limits, the disk fill's baseline.
FILL_BASELINE_COMMIT = "fd1f8a1"
TARGET_P99_MS = 100.0
TARGET_KEPT_S = 30.0
ATTACKS = {"no attack": (0, 0), "300 slowloris + 50 slow bodies": (300, 50)}
MAX_SPOOL_BYTES = field_default("max_spool_bytes")
# The disk fill's clients trickle a byte this often: under any pause limit (the code before this change cut a
# body that paused 10 s), far under any rate.
FILL_INTERVAL = 8.0
FILL = "disk fill"


def _timed(call, timeout: float) -> float:
    """Milliseconds ``call(timeout=timeout)`` took; ``timeout`` if it failed or did not answer in time."""
    started = time.perf_counter()
    try:
        response = call(timeout=timeout)
        if response.status_code >= 300:
            return timeout * 1000
    except requests.RequestException:
        return timeout * 1000
    return (time.perf_counter() - started) * 1000


def start_web(stack: BenchStack, tree: Path | None) -> None:
    """The Procfile's web process of ``tree`` (this one by default), with this virtual environment."""
    if tree is None:
        stack.start()
        return
    env = dict(stack.stack.prepare(), PYTHONPATH=str(tree))
    env["PUBLIC_BASE_URL"] = stack.base_url
    command = procfile_commands(tree / "Procfile")["web"]
    process = start_process(["sh", "-c", "exec " + command], env, log_path=str(stack.var_dir / "web.log"), cwd=tree)
    stack.stack.processes["web"] = process

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the old web process exited; see {stack.var_dir / 'web.log'}")
        try:
            return requests.get(stack.base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answers, timeout=30, message="the old web process to answer /healthz")


def sample_answers(stack: BenchStack, jobs, args) -> dict[str, float]:
    """``args.samples`` callbacks and job reads, one at a time, each on a new connection: their latencies."""
    token = stack.env["API_TOKENS"].split(",")[0]
    key = stack.env["SECRET_KEY"]
    acks, reads = [], []
    for n in range(args.samples):
        job = jobs[n % len(jobs)]
        url = signing.job_webhook_url(stack.base_url, key, job.job_id)
        headers = {"Content-Type": "application/json",
                   "X-Webhook-Secret": signing.job_webhook_secret(key, job.job_id), "Connection": "close"}
        body = f'{{"id": "{job.bfl_id}", "status": "Pending"}}'
        read_url = f"{stack.base_url}/v1/jobs/{job.job_id}"
        acks.append(_timed(partial(requests.post, url, data=body, headers=headers), args.timeout))
        reads.append(_timed(partial(requests.get, read_url, headers={"Authorization": f"Bearer {token}",
                                                                     "Connection": "close"}), args.timeout))
    return {"ack_p50": percentile(acks, 50), "ack_p99": percentile(acks, 99), "read_p99": percentile(reads, 99),
            "answered": sum(a < args.timeout * 1000 for a in acks + reads) / (2 * args.samples)}


def _sample_spool(web_pid: int, directory: str, stop, results) -> None:
    """Every 0.1 s, what each process under ``web_pid`` holds in files under ``directory``, until ``stop``; sends
    the peak of one process, the peak of all, and the last total."""
    peak_process = peak_total = last_total = 0
    workers: list[int] = []
    while not stop.wait(0.1):
        if not workers or not all(Path(f"/proc/{pid}").exists() for pid in workers):
            workers = descendants(web_pid)  # (again: gunicorn replaced a worker that died)
        held = [spooled_bytes(pid, Path(directory)) for pid in workers]
        last_total = sum(held)
        peak_process = max(peak_process, *held, 0)
        peak_total = max(peak_total, last_total)
    results.send((peak_process, peak_total, last_total))


def _disk_fill_process(port: int, options: dict, stop, results) -> None:
    """The disk fill's clients: their threads push hundreds of MiB each."""
    fill = DiskFill(port, **options).start()
    stop.wait()
    fill.stop()
    results.send(fill.all_lives())


class Beside:
    """``target(*args, stop, results)`` in a process of its own until ``finish()``, which returns what it sent.

    The disk fill's threads and the scans of /proc would otherwise share this process's GIL with the timed
    requests, and the bench would time its own waits for it instead of the server's answers.
    """

    def __init__(self, target, *args):
        spawn = multiprocessing.get_context("spawn")
        self._stop = spawn.Event()
        self._results, sender = spawn.Pipe(duplex=False)
        self._process = spawn.Process(target=target, args=(*args, self._stop, sender), daemon=True)
        self._process.start()

    def finish(self, timeout: float = 30.0):
        self._stop.set()
        sent = self._results.recv() if self._results.poll(timeout) else None
        self._process.join(timeout=10)
        if sent is None:
            raise RuntimeError(f"{self._process.name} sent nothing")
        return sent


def measure_disk_fill(stack: BenchStack, jobs, args) -> dict[str, float]:
    """Callbacks and reads while ``args.fill_connections`` clients fill the disk; what the web processes held."""
    options = {"connections": args.fill_connections, "fast": args.fill_mib * MIB, "interval": FILL_INTERVAL,
               "limit": args.hold + args.samples * 2 * args.timeout + 60}
    sampler = Beside(_sample_spool, stack.stack.processes["web"].pid, stack.env["TMPDIR"])
    started = time.monotonic()
    attacker = Beside(_disk_fill_process, int(stack.env["PORT"]), options)
    try:
        time.sleep(2.0)  # the fast parts under way
        figures = sample_answers(stack, jobs, args)
        while time.monotonic() - started < args.hold:
            time.sleep(0.5)
    finally:
        # The last sample is what the attack still held as it ended.
        peak_process, peak_total, held_at_end = sampler.finish()
        ended = time.monotonic()
        lives = attacker.finish(timeout=FILL_INTERVAL + 30)
    longest = max(lives, key=lambda life: life.held)
    statuses = Counter(life.status for life in lives if life.status is not None)
    return {**figures, "peak_process": peak_process / MIB, "peak_total": peak_total / MIB,
            "held_at_end": held_at_end / MIB, "kept": longest.held,
            # Still open when the attack ended: the server had not let go of it.
            "held": longest.filled is not None and (longest.closed or ended) >= ended and not longest.answer,
            "opened": len(lives), "statuses": dict(statuses)}


def measure(stack: BenchStack, jobs, slowloris: int, slow_bodies: int, args) -> dict[str, float]:
    attack = None
    if slowloris or slow_bodies:
        attack = Attack(int(stack.env["PORT"]), slowloris=slowloris, slow_bodies=slow_bodies, interval=1.0,
                        replace=True, limit=args.hold + args.samples * 2 * args.timeout + 30).start()
        time.sleep(2.0)  # every connection in, its first bytes sent
    started = time.monotonic()
    try:
        figures = sample_answers(stack, jobs, args)
        if attack is not None:
            while time.monotonic() - started < args.hold:
                time.sleep(0.5)
    finally:
        if attack is not None:
            kept, held = attack.longest_kept()
            figures_attack = {"kept": kept, "held": held, "opened": attack.opened_count,
                              "closed": len(attack.closed_by_server())}
            attack.stop()
        else:
            figures_attack = {"kept": float("nan"), "held": False, "opened": 0, "closed": 0}
    return {**figures, **figures_attack}


def one_design(args, tree: Path | None, attacks: list[str]) -> dict[str, dict[str, float]]:
    """The ``attacks`` (names of ATTACKS, and FILL) against the web process of ``tree`` (this one if None)."""
    name = tree.name if tree else "fluxhook"
    stack = BenchStack(f"hostile-{name}", log_level=args.log_level)
    # Spool files go to TMPDIR: a directory of the stack's own, so they can be told from any other.
    stack.env["TMPDIR"] = str(stack.var_dir / "spool")
    Path(stack.env["TMPDIR"]).mkdir()
    with stack:
        start_web(stack, tree)
        jobs = create_jobs(stack, 20, prompt="[pending] hostile bench")
        figures = {}
        for label in attacks:
            log(f"hostile ({name}): {label}")
            if label == FILL:
                figures[label] = measure_disk_fill(stack, jobs, args)
            else:
                figures[label] = measure(stack, jobs, *ATTACKS[label], args)
        return figures


def _kept(figures: dict[str, float]) -> str:
    if figures["kept"] != figures["kept"]:  # NaN: no attack
        return "-"
    return ("≥" if figures["held"] else "") + fmt(figures["kept"])


def _statuses(figures: dict) -> str:
    return ", ".join(f"{count} × {status}" for status, count in sorted(figures["statuses"].items())) or "none"


def run(args) -> list[Section]:
    ours = one_design(args, None, [*ATTACKS, FILL])
    baseline = one_design(args, args.old_tree, list(ATTACKS))
    before = one_design(args, args.fill_old_tree, [FILL])
    section = Section("hostile clients: callbacks and reads while slow clients attack the web process")
    for label in ATTACKS:
        o, b = ours[label], baseline[label]
        section.rows += [
            Row(f"{label}: callback ack p50, ms", fmt(o["ack_p50"]), fmt(b["ack_p50"])),
            Row(f"{label}: callback ack p99, ms", fmt(o["ack_p99"]), fmt(b["ack_p99"]), "",
                f"<= {TARGET_P99_MS:g}", o["ack_p99"] <= TARGET_P99_MS),
            Row(f"{label}: job read p99, ms", fmt(o["read_p99"]), fmt(b["read_p99"]), "",
                f"<= {TARGET_P99_MS:g}", o["read_p99"] <= TARGET_P99_MS),
            Row(f"{label}: answered in time, %", fmt(100 * o["answered"]), fmt(100 * b["answered"])),
        ]
        if ATTACKS[label] != (0, 0):
            section.rows.append(Row(f"{label}: longest a hostile connection was kept, s", _kept(o), _kept(b), "",
                                    f"<= {TARGET_KEPT_S:g}", not o["held"] and o["kept"] <= TARGET_KEPT_S))
            section.notes.append(f"{label}: hostile connections opened {o['opened']} (fluxhook) vs {b['opened']} "
                                 f"(baseline); closed by the server {o['closed']} vs {b['closed']}")
    section.notes.append(f"{args.samples} callbacks and {args.samples} reads per attack, one at a time, each on a new "
                         f"connection; an answer not in {args.timeout:g} s counts as {args.timeout:g} s. Attacks last "
                         f"{args.hold:g} s at least; '≥' marks a connection still open when the attack ended. "
                         f"Web: the Procfile's (2 processes); baseline: {args.old_tree}'s Procfile, same venv.")
    return [section, fill_section(args, ours[FILL], before[FILL])]


def fill_section(args, o: dict, b: dict) -> Section:
    """The disk fill, beside the code before the spool limits (``--fill-old-tree``)."""
    section = Section(f"disk fill: bodies sent fast, then trickled (baseline: {args.fill_old_tree.name})")
    limit_mib = MAX_SPOOL_BYTES / MIB
    section.rows += [
        Row(f"{FILL}: spooled bytes peak of one web process, MiB", fmt(o["peak_process"]), fmt(b["peak_process"]),
            "", f"<= {limit_mib:g}", o["peak_process"] <= limit_mib),
        Row(f"{FILL}: spooled bytes peak of all web processes, MiB", fmt(o["peak_total"]), fmt(b["peak_total"])),
        Row(f"{FILL}: still spooled when the attack ended, MiB", fmt(o["held_at_end"]), fmt(b["held_at_end"])),
        Row(f"{FILL}: callback ack p50, ms", fmt(o["ack_p50"]), fmt(b["ack_p50"])),
        Row(f"{FILL}: callback ack p99, ms", fmt(o["ack_p99"]), fmt(b["ack_p99"]), "",
            f"<= {TARGET_P99_MS:g}", o["ack_p99"] <= TARGET_P99_MS),
        Row(f"{FILL}: job read p99, ms", fmt(o["read_p99"]), fmt(b["read_p99"]), "",
            f"<= {TARGET_P99_MS:g}", o["read_p99"] <= TARGET_P99_MS),
        Row(f"{FILL}: longest a connection held its spool after its fast part, s", _kept(o), _kept(b), "",
            f"<= {TARGET_KEPT_S:g}", not o["held"] and o["kept"] <= TARGET_KEPT_S),
    ]
    section.notes.append(f"{FILL}: {args.fill_connections} clients, each {args.fill_mib} MiB of a 256 MiB body at once, "
                         f"then a byte every {FILL_INTERVAL:g} s (to /signin, GET /healthz, /v1/jobs with a forged key; "
                         f"one closed comes back after 1 s); bodies sent {o['opened']} (fluxhook) vs {b['opened']} "
                         f"(baseline); answers {_statuses(o)} vs {_statuses(b)}. Spooled bytes: the files under each "
                         f"web process's TMPDIR it holds open (/proc, every 0.1 s); MAX_SPOOL_BYTES "
                         f"{limit_mib:g} MiB per web process. The attack runs in a process of its own.")
    section.notes.append(f"{args.samples} callbacks and {args.samples} reads meanwhile, as above; the attack lasts "
                         f"{args.hold:g} s at least. Baseline: {args.fill_old_tree}'s Procfile (the code before the "
                         f"spool limits), same venv.")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60, help="callbacks and reads per attack (default 60)")
    parser.add_argument("--timeout", type=float, default=1.0, help="longest wait for one answer, s (default 1)")
    parser.add_argument("--hold", type=float, default=35.0, help="shortest attack, s (default 35)")
    parser.add_argument("--old-tree", type=Path, default=Path("/tmp/fluxhook-194e639"),
                        help="checkout of the code to compare with (default /tmp/fluxhook-194e639)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the web processes")
    parser.add_argument("--fill-connections", type=int, default=20, help="disk fill: clients (default 20)")
    parser.add_argument("--fill-mib", type=int, default=200, help="disk fill: MiB each sends at once (default 200)")
    parser.add_argument("--fill-old-tree", type=Path, default=Path("/tmp/fluxhook-fd1f8a1"),
                        help="checkout of the code before the spool limits, for the disk fill "
                             "(default /tmp/fluxhook-fd1f8a1)")
    args = parser.parse_args(argv)
    for tree, commit in ((args.old_tree, BASELINE_COMMIT), (args.fill_old_tree, FILL_BASELINE_COMMIT)):
        if not (tree / "Procfile").exists():
            require_tools("bench-hostile", "git")
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                           check=True, timeout=120)
    # 350 attacking sockets, their replacements and the stacks' own: more than a default soft limit of 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    print_report(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
