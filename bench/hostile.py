"""Benchmark: callbacks and job reads while slow clients attack the web process, beside the code before it.

    .venv/bin/python -m bench.hostile [--samples 60] [--hold 35] [--old-tree /tmp/fluxhook-194e639]

The Procfile's web process alone (2 processes, no proxy in front) with the BFL simulator. For each
attack (none; 300 slowloris + 50 slow bodies, devtools/hostile_clients.py: heads and bodies sent a
byte a second, no credentials, each connection the server closes replaced at once), the bench
sends ``--samples`` signed callbacks (``Pending`` reports for submitted jobs) and as many
``GET /v1/jobs/{id}``, one at a time, each on a new connection, timing each answer (capped at
``--timeout``: an answer that does not come in time counts as that long). The attack lasts
``--hold`` seconds at least; the longest time the server kept any hostile connection open is
reported (one still open when the attack ends counts as held to the end).

fluxhook: this tree. Baseline, in the same run: the tree at ``--old-tree`` (a checkout of commit
194e639, made with ``git worktree add`` when missing), its Procfile's web process run with
this virtual environment. Everything listens on 127.0.0.1. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from functools import partial
from pathlib import Path

import requests

from devtools.hostile_clients import Attack
from devtools.processes import ROOT, require_tools, start_process, wait_until
from devtools.stack import procfile_commands
from fluxhook.core import signing

from .common import BenchStack, Row, Section, create_jobs, fmt, log, percentile, print_notes, print_table

BASELINE_COMMIT = "194e639"
TARGET_P99_MS = 100.0
TARGET_KEPT_S = 30.0
ATTACKS = {"no attack": (0, 0), "300 slowloris + 50 slow bodies": (300, 50)}


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


def measure(stack: BenchStack, jobs, slowloris: int, slow_bodies: int, args) -> dict[str, float]:
    token = stack.env["API_TOKENS"].split(",")[0]
    key = stack.env["SECRET_KEY"]

    attack = None
    if slowloris or slow_bodies:
        attack = Attack(int(stack.env["PORT"]), slowloris=slowloris, slow_bodies=slow_bodies, interval=1.0,
                        replace=True, limit=args.hold + args.samples * 2 * args.timeout + 30).start()
        time.sleep(2.0)  # every connection in, its first bytes sent
    started = time.monotonic()
    acks, reads = [], []
    try:
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
        figures = {"ack_p50": percentile(acks, 50), "ack_p99": percentile(acks, 99), "read_p99": percentile(reads, 99),
                   "answered": sum(a < args.timeout * 1000 for a in acks + reads) / (2 * args.samples)}
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


def one_design(args, tree: Path | None) -> dict[str, dict[str, float]]:
    name = "old" if tree else "new"
    stack = BenchStack(f"hostile-{name}", log_level=args.log_level)
    try:
        start_web(stack, tree)
        jobs = create_jobs(stack, 20, prompt="[pending] hostile bench")
        figures = {}
        for label, (slowloris, slow_bodies) in ATTACKS.items():
            log(f"hostile ({'baseline 194e639' if tree else 'fluxhook'}): {label}")
            figures[label] = measure(stack, jobs, slowloris, slow_bodies, args)
        return figures
    finally:
        stack.stop()
        stack.cleanup()


def _kept(figures: dict[str, float]) -> str:
    if figures["kept"] != figures["kept"]:  # NaN: no attack
        return "-"
    return ("≥" if figures["held"] else "") + fmt(figures["kept"])


def run(args) -> Section:
    ours = one_design(args, None)
    baseline = one_design(args, args.old_tree)
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
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60, help="callbacks and reads per attack (default 60)")
    parser.add_argument("--timeout", type=float, default=1.0, help="longest wait for one answer, s (default 1)")
    parser.add_argument("--hold", type=float, default=35.0, help="shortest attack, s (default 35)")
    parser.add_argument("--old-tree", type=Path, default=Path("/tmp/fluxhook-194e639"),
                        help="checkout of the code to compare with (default /tmp/fluxhook-194e639)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the web processes")
    args = parser.parse_args(argv)
    if not (args.old_tree / "Procfile").exists():
        require_tools("bench-hostile", "git")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(args.old_tree), BASELINE_COMMIT],
                       check=True, timeout=120)
    # 350 attacking sockets, their replacements and the stacks' own: more than a default soft limit of 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    section = run(args)
    print_table([section])
    print_notes([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
