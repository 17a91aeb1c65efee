"""Benchmark: several BFL accounts: throughput of two beside one, and failover while accounts answer 503.

    .venv/bin/python -m bench.accounts [--phases a,b,c,dispatch] [--jobs 600] [--down-seconds 60] [--task-delay 1]
                                       [--rate 10] [--workers 4] [--max-active 24] [--retry-afters null,5]

Every phase runs the Procfile's web and ``--workers`` worker processes (``python -m worker`` each) on an embedded
Redis, with one simulator process serving the accounts (``devtools.stack.start_simulator_accounts``), each
account ``BFL_<NAME>_MAX_ACTIVE=--max-active`` slots and simulator tasks of ``--task-delay`` seconds. Jobs go in
through ``POST /v1/jobs`` (one app's admin token), as clients send them; the figures come from the jobs' Redis
records (``created_at``, ``submitted_at``: BFL's acceptance, ``completed_at``, ``account``, ``status``) and from
each simulated account's ``/_sim/stats`` (``submitted``: tasks it accepted, ``refused``).

(a) throughput: the same ``--jobs`` at once through ONE account, then through TWO (a fresh stack each, one after
    the other on this machine). Jobs accepted by BFL per second (first ``submitted_at`` to last) and stored per
    second (first job created to last stored); target: two accounts >= 1.9x one. Beside them, the CPU seconds
    each process kind spent and the machine's idle CPU, to say what limits the rate.
(b) one account down: two accounts, jobs at ``--rate`` per second for 2 x ``--down-seconds``; after a warm-up
    of half that, account ``eu`` answers every submission ``503`` (``refuse_retry_after`` each of
    ``--retry-afters``, one window each on the same stack) for ``--down-seconds``, then serves again. Figures:
    jobs failed (target 0); p50 / p99 / max of ``submitted_at - created_at`` of the jobs created while it was
    down (target p99 <= 2 s), beside the jobs created before (the baseline, same run) and after.
(c) both down: two accounts both answering 503 for ``--down-seconds`` while jobs come at ``--rate``; then both
    serve again. Figures: jobs failed (0), all stored after (and the seconds from recovery to the last stored),
    and none sent twice: the simulators' ``submitted`` deltas sum to the jobs created, and each account's delta
    equals the jobs whose record names it.
(dispatch) information: one ``Slots.dispatch()`` call (its round trip, and the script's own time as Redis
    counts it) on a bare embedded Redis with 1, 2, 4 and 8 accounts configured and 100 or 10,000 jobs of one
    owner in line: when every slot is taken (the sweep's tick under a backlog: it gives none) and when there is
    room (it gives one); 200 calls each.

Loopback only; nothing outside temporary directories changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from devtools.processes import RedisServer, stop_process
from devtools.stack import accounts_env, start_simulator_accounts

from .common import (
    BenchStack,
    Row,
    Section,
    descendants,
    exit_on_sigterm,
    fmt,
    loadavg,
    log,
    percentile,
    print_report,
    read_jobs,
    thread_session,
    wait_all_terminal,
)

PHASES = ("a", "b", "c", "dispatch")
NAMES = ("eu", "us")
TARGET_RATIO = 1.9
TARGET_P99 = 2.0
DRAIN_TIMEOUT = 600.0
# Clients posting at once in phase (a), at least: each POST may wait on BFL's answer to its submission.
CLIENTS = 64
FIELDS = ("status", "created_at", "submitted_at", "completed_at", "account", "bfl_id")


# --------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--jobs", type=int, default=600, help="(a) jobs sent at once through one account, then two")
    parser.add_argument("--down-seconds", type=float, default=60.0, help="(b), (c) how long accounts answer 503")
    parser.add_argument("--task-delay", type=float, default=1.0, help="seconds a simulator task takes")
    parser.add_argument("--submit-delay", type=float, default=0.0,
                        help="seconds each account takes to answer a submission (BFL's is about 1 s)")
    parser.add_argument("--rate", type=float, default=10.0, help="(b), (c) jobs created per second")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1),
                        help="worker processes (default: two per core, the README's setting)")
    parser.add_argument("--max-active", type=int, default=24, help="each account's BFL_<NAME>_MAX_ACTIVE")
    parser.add_argument("--retry-afters", default="null,5",
                        help="(b) the refusals' Retry-After, one outage window each (null: none sent)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of web and workers")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown or not args.phases:
        parser.error(f"phases are among {', '.join(PHASES)}")
    args.retry_afters = [None if v.strip() in ("null", "none", "") else int(v) for v in args.retry_afters.split(",")]
    return args


# --------------------------------------------------------------------------- a stack of accounts


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (those alive now)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def machine_idle() -> tuple[float, float]:
    """(idle, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values)


class AccountsStack:
    """The Procfile's web and workers on an embedded Redis, before a simulator process serving ``names``."""

    def __init__(self, names: tuple[str, ...], args: argparse.Namespace):
        self.names = names
        self.var_dir = Path(tempfile.mkdtemp(prefix="fluxhook-bench-accounts-"))
        self.sim_process, self.accounts = start_simulator_accounts(
            list(names), str(self.var_dir / "simulator.log"), "--task-delay", str(args.task_delay))
        env = accounts_env(self.accounts.values())
        for account in self.accounts.values():
            env[f"{account.env_prefix}MAX_ACTIVE"] = str(args.max_active)
        self.bench = BenchStack("accounts", log_level=args.log_level, **env)
        self.workers = args.workers
        self.submit_delay = args.submit_delay

    def start(self) -> "AccountsStack":
        self.bench.start(workers=self.workers)
        for account in self.accounts.values():
            # BFL's own limit above fluxhook's slots: it never answers 429 here, only what the switch says.
            self.settings(account.name, max_active=10_000, submit_delay=self.submit_delay)
        return self

    def stop(self) -> None:
        self.bench.stop()
        stop_process(self.sim_process)
        self.bench.cleanup()
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def settings(self, name: str, **changes) -> dict:
        response = requests.post(f"{self.accounts[name].base}/_sim/settings", json=changes, timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, dict]:
        return {name: requests.get(f"{a.base}/_sim/stats", timeout=30).json() for name, a in self.accounts.items()}

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process kind."""
        redis_pid = self.bench.stack.redis.process.pid if self.bench.stack.redis else None
        return {"web": cpu_seconds(self.bench.web.pid),
                "workers": sum(cpu_seconds(w.pid) for w in self.bench.workers),
                "simulator": cpu_seconds(self.sim_process.pid),
                "redis": cpu_seconds(redis_pid) if redis_pid else 0.0,
                "bench client": os.times().user + os.times().system}

    def records(self, ids: list[str]) -> list[dict]:
        return read_jobs(self.bench.redis(), ids, FIELDS)


@dataclass
class Fed:
    """Jobs created through POST /v1/jobs: their ids, and the POSTs that were not answered 202."""

    ids: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_jobs(stack: AccountsStack, count: int | None, rate: float | None, stop: threading.Event | None = None,
              threads: int = 6) -> Fed:
    """``count`` jobs (or until ``stop``) through POST /v1/jobs, at ``rate`` per second (None: as fast as
    ``threads`` clients go); each an ordinary prompt whose task ends Ready after the simulator's task delay."""
    fed = Fed()
    token = stack.bench.env["API_TOKENS"].split(",")[0]
    url = stack.bench.base_url + "/v1/jobs"
    local = threading.local()

    def post(n: int) -> None:
        try:
            response = thread_session(local, token).post(
                url, json={"model": "flux-2-pro", "input": {"prompt": f"bench accounts {n}"}}, timeout=30)
            ok, text = response.status_code == 202, f"{response.status_code} {response.text[:120]}"
        except requests.RequestException as exc:
            ok, text = False, repr(exc)
        with fed.lock:
            if ok:
                fed.ids.append(response.json()["id"])
            else:
                fed.refused.append(text)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        n = 0
        while (count is None or n < count) and not (stop is not None and stop.is_set()):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    if stop is not None:
                        if stop.wait(delay):
                            break
                    else:
                        time.sleep(delay)
            pool.submit(post, n)
            n += 1
    return fed


class Feeder:
    """post_jobs at ``rate`` in a thread of its own until stopped."""

    def __init__(self, stack: AccountsStack, rate: float):
        self.stop_event = threading.Event()
        self.result: Fed | None = None
        self.thread = threading.Thread(target=self._run, args=(stack, rate), daemon=True)

    def _run(self, stack: AccountsStack, rate: float) -> None:
        self.result = post_jobs(stack, None, rate, self.stop_event, threads=4)

    def start(self) -> "Feeder":
        self.thread.start()
        return self

    def stop(self) -> Fed:
        self.stop_event.set()
        self.thread.join(timeout=60)
        assert self.result is not None
        return self.result


def waits(records: list[dict], since: float = float("-inf"), until: float = float("inf")) -> list[float]:
    """submitted_at - created_at of the jobs created in [since, until) that BFL accepted."""
    return [float(r["submitted_at"]) - float(r["created_at"]) for r in records
            if r["submitted_at"] and since <= float(r["created_at"]) < until]


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{fmt(percentile(values, 50), 2)} / {fmt(percentile(values, 99), 2)} / {fmt(max(values), 2)}"


def by_account(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        if r["account"]:
            counts[r["account"]] = counts.get(r["account"], 0) + 1
    return counts


def sent_once(records: list[dict], before: dict[str, dict], after: dict[str, dict]) -> tuple[bool, str]:
    """Whether each simulated account accepted exactly as many tasks as jobs name it, and they sum to the jobs."""
    deltas = {name: after[name]["submitted"] - before[name]["submitted"] for name in after}
    counted = by_account(records)
    ok = sum(deltas.values()) == len(records) and all(deltas[n] == counted.get(n, 0) for n in deltas)
    text = ", ".join(f"{n} {deltas[n]} accepted / {counted.get(n, 0)} jobs" for n in sorted(deltas))
    return ok, f"{sum(deltas.values())} accepted for {len(records)} jobs ({text})"


# --------------------------------------------------------------------------- (a) throughput


def throughput_run(names: tuple[str, ...], args: argparse.Namespace) -> dict:
    stack = AccountsStack(names, args).start()
    try:
        before = stack.stats()
        cpu_before, idle_before = stack.cpu(), machine_idle()
        started = time.time()
        # As many clients as the accounts have slots: a client that posts fewer at once measures itself.
        fed = post_jobs(stack, args.jobs, None, threads=max(CLIENTS, args.max_active * len(names)))
        posted = time.time() - started
        took = wait_all_terminal(stack.bench.redis(), fed.ids, timeout=DRAIN_TIMEOUT)
        ended = time.time()
        cpu_after, idle_after = stack.cpu(), machine_idle()
        records = stack.records(fed.ids)
        after = stack.stats()
    finally:
        stack.stop()
    accepted = sorted(float(r["submitted_at"]) for r in records if r["submitted_at"])
    stored = [float(r["completed_at"]) for r in records if r["status"] == "stored"]
    wall = ended - started
    once, once_text = sent_once(records, before, after)
    return {
        "jobs": len(fed.ids), "refused_posts": len(fed.refused), "posted_in": posted,
        "failed": sum(1 for r in records if r["status"] != "stored"),
        "bfl_rate": (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else float("nan"),
        "stored_rate": len(stored) / (max(stored) - started) if stored else float("nan"),
        "took": took, "wall": wall, "by_account": by_account(records), "sent_once": once, "sent_text": once_text,
        "cpu": {k: (cpu_after[k] - cpu_before[k]) / wall for k in cpu_after},
        "idle": (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1]),
        "peak": {n: after[n].get("max_active_seen", 0) for n in after},
    }


def phase_a(args: argparse.Namespace) -> tuple[Section, list[tuple[str, bool]]]:
    runs = {}
    for label, names in (("one", NAMES[:1]), ("two", NAMES)):
        log(f"(a) {args.jobs} jobs at once through {label} account(s) of {args.max_active} slots, "
            f"{args.task_delay:g} s tasks, {args.workers} worker processes")
        runs[label] = throughput_run(names, args)
        log(f"    {runs[label]['bfl_rate']:.1f} accepted/s, {runs[label]['stored_rate']:.1f} stored/s, "
            f"failed {runs[label]['failed']}")
    one, two = runs["one"], runs["two"]
    ratio = two["bfl_rate"] / one["bfl_rate"]
    stored_ratio = two["stored_rate"] / one["stored_rate"]
    ceiling = args.max_active / args.task_delay
    section = Section(f"(a) throughput: {args.jobs} jobs at once, accounts of {args.max_active} slots, "
                      f"{args.task_delay:g} s tasks, {args.workers} worker processes; two accounts beside one")
    section.rows = [
        Row("accepted by BFL (jobs/s, first to last submitted_at)", fmt(two["bfl_rate"], 1), fmt(one["bfl_rate"], 1),
            fmt(ratio, 2, "x"), f">= {TARGET_RATIO:g}x", ratio >= TARGET_RATIO),
        Row("stored (jobs/s, first created to last stored)", fmt(two["stored_rate"], 1), fmt(one["stored_rate"], 1),
            fmt(stored_ratio, 2, "x"), "(info)"),
        Row("  slots' ceiling (slots / task seconds, jobs/s)", fmt(2 * ceiling, 0), fmt(ceiling, 0)),
        Row("  jobs failed", str(two["failed"]), str(one["failed"]), "", "0", two["failed"] == 0 and one["failed"] == 0),
        Row("  each task sent once", "yes" if two["sent_once"] else "NO", "yes" if one["sent_once"] else "NO", "",
            "yes", two["sent_once"] and one["sent_once"]),
        Row("  jobs by account", _counts(two["by_account"]), _counts(one["by_account"])),
        Row("  BFL's most tasks at once, per account", _counts(two["peak"]), _counts(one["peak"])),
        Row("  POST /v1/jobs of all jobs took (s)", fmt(two["posted_in"], 1), fmt(one["posted_in"], 1)),
    ]
    for kind in two["cpu"]:
        section.rows.append(Row(f"  CPU of {kind} (cores, over the run)", fmt(two["cpu"][kind], 2),
                                fmt(one["cpu"][kind], 2)))
    section.rows.append(Row("  machine idle (share of all CPUs)", fmt(two["idle"], 2), fmt(one["idle"], 2)))
    section.notes = [
        "fluxhook: two accounts (eu, us); baseline: one account (eu); a fresh stack each, one after the other",
        f"two accounts: {two['sent_text']}; one: {one['sent_text']}",
        f"POSTs not answered 202: {two['refused_posts']} (two), {one['refused_posts']} (one)",
        f"machine: {os.cpu_count()} CPUs; every process of the stack and the bench client share them; the CPU rows "
        "say which process kind was busy (1.0 = one core) and the idle row how much was left",
    ]
    return section, [("(a) throughput two/one >= 1.9x", ratio >= TARGET_RATIO),
                     ("(a) no job failed, none sent twice", two["failed"] == one["failed"] == 0
                      and two["sent_once"] and one["sent_once"])]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


# --------------------------------------------------------------------------- (b) one account down


def phase_b(args: argparse.Namespace) -> tuple[Section, list[tuple[str, bool]]]:
    down, rate = args.down_seconds, args.rate
    section = Section(f"(b) account eu answers 503 for {down:g} s mid-run: two accounts of {args.max_active} slots, "
                      f"{args.task_delay:g} s tasks, {rate:g} jobs/s for {2 * down:g} s per window; baseline: the "
                      "jobs created before the outage, same window")
    verdicts = []
    stack = AccountsStack(NAMES, args).start()
    try:
        for retry_after in args.retry_afters:
            name = f"Retry-After {retry_after if retry_after is not None else 'none'}"
            log(f"(b) {name}: {rate:g} jobs/s; eu down after {down / 2:g} s, for {down:g} s")
            before = stack.stats()
            feeder = Feeder(stack, rate).start()
            time.sleep(down / 2)
            t_down = time.time()
            stack.settings("eu", refuse=503, refuse_retry_after=retry_after)
            time.sleep(down)
            t_up = time.time()
            stack.settings("eu", refuse=None, refuse_retry_after=None)
            time.sleep(down / 2)
            fed = feeder.stop()
            drained = wait_all_terminal(stack.bench.redis(), fed.ids, timeout=DRAIN_TIMEOUT)
            records = stack.records(fed.ids)
            after = stack.stats()
            during, baseline, later = waits(records, t_down, t_up), waits(records, until=t_down), waits(records, t_up)
            failed = sum(1 for r in records if r["status"] != "stored")
            p99 = percentile(during, 99)
            once, once_text = sent_once(records, before, after)
            in_outage = [r for r in records if t_down <= float(r["created_at"]) < t_up]
            refused = after["eu"]["refused"] - before["eu"]["refused"]
            back = min((float(r["submitted_at"]) for r in records
                        if r["account"] == "eu" and r["submitted_at"] and float(r["submitted_at"]) >= t_up),
                       default=float("nan"))
            section.rows += [
                Row(f"[{name}] jobs failed (of {len(records)})", str(failed), "", "", "0", failed == 0),
                Row(f"[{name}] submission -> BFL, p99 (s)", fmt(p99, 2), fmt(percentile(baseline, 99), 2), "",
                    f"<= {TARGET_P99:g} s", p99 <= TARGET_P99),
                Row(f"[{name}]   p50 / p99 / max (s)", spread(during), spread(baseline)),
                Row(f"[{name}]   after recovery p50 / p99 / max (s)", spread(later), ""),
                Row(f"[{name}]   jobs created during the outage, by account", _counts(by_account(in_outage)), ""),
                Row(f"[{name}]   eu's refusals (503 answers)", str(refused), ""),
                Row(f"[{name}]   eu serves again -> its first task accepted (s)", fmt(back - t_up, 1), ""),
                Row(f"[{name}]   each task sent once", "yes" if once else "NO", "", "", "yes", once),
            ]
            section.notes.append(f"{name}: {len(in_outage)} jobs created during the outage, {len(baseline)} before it, "
                                 f"{len(later)} after; {once_text}; all ended {drained:.1f} s after the last was "
                                 f"created; POSTs not answered 202: {len(fed.refused)}")
            verdicts += [(f"(b) {name}: 0 failed", failed == 0), (f"(b) {name}: p99 <= 2 s", p99 <= TARGET_P99),
                         (f"(b) {name}: none sent twice", once)]
            log(f"    failed {failed}, during p50/p99/max {spread(during)} s, before {spread(baseline)} s, "
                f"eu refused {refused}")
            time.sleep(min(5.0, down / 4))  # the next window starts with eu warm again
    finally:
        stack.stop()
    section.notes.append("submission -> BFL: a job's submitted_at (BFL accepted it) minus its created_at (POST "
                         "/v1/jobs recorded it); 'during' counts the jobs created while eu refused, wherever they went")
    return section, verdicts


# --------------------------------------------------------------------------- (c) both down


def phase_c(args: argparse.Namespace) -> tuple[Section, list[tuple[str, bool]]]:
    down, rate = args.down_seconds, args.rate
    stack = AccountsStack(NAMES, args).start()
    try:
        log(f"(c) both accounts answer 503 for {down:g} s while {rate:g} jobs/s come; then both serve again")
        before = stack.stats()
        for name in NAMES:
            stack.settings(name, refuse=503, refuse_retry_after=None)
        feeder = Feeder(stack, rate).start()
        t_down, last, probes = time.time(), before, []
        while time.time() < t_down + down:  # when the 503s come, and how many at a time: the probes of each account
            time.sleep(0.5)
            now = stack.stats()
            step = {n: now[n]["refused"] - last[n]["refused"] for n in NAMES}
            if any(step.values()):
                probes.append(f"{time.time() - t_down:.1f} s: " + _counts({n: v for n, v in step.items() if v}))
            last = now
        fed = feeder.stop()
        mid = stack.stats()
        db = stack.bench.redis()
        during = stack.records(fed.ids)
        t_up = time.time()
        for name in NAMES:
            stack.settings(name, refuse=None)
        drained = wait_all_terminal(db, fed.ids, timeout=DRAIN_TIMEOUT)
        records = stack.records(fed.ids)
        after = stack.stats()
    finally:
        stack.stop()
    failed = sum(1 for r in records if r["status"] != "stored")
    stored = sum(1 for r in records if r["status"] == "stored")
    failed_meanwhile = sum(1 for r in during if r["status"] == "failed")
    accepted_meanwhile = sum(mid[n]["submitted"] - before[n]["submitted"] for n in NAMES)
    refused = sum(mid[n]["refused"] - before[n]["refused"] for n in NAMES)
    refused_each = {n: mid[n]["refused"] - before[n]["refused"] for n in NAMES}
    once, once_text = sent_once(records, before, after)
    first_after = min((float(r["submitted_at"]) for r in records if r["submitted_at"]), default=float("nan"))
    last_stored = max((float(r["completed_at"]) for r in records if r["status"] == "stored"), default=float("nan"))
    section = Section(f"(c) both accounts answer 503 for {down:g} s while {rate:g} jobs/s come, then both serve "
                      f"again: accounts of {args.max_active} slots, {args.task_delay:g} s tasks")
    section.rows = [
        Row(f"jobs failed (of {len(records)})", str(failed), "", "", "0", failed == 0),
        Row("jobs stored after recovery", f"{stored} of {len(records)}", "", "", "all", stored == len(records)),
        Row("tasks accepted by BFL - jobs (none sent twice)", str(sum(after[n]["submitted"] - before[n]["submitted"]
                                                                      for n in NAMES) - len(records)),
            "", "", "0", once),
        Row("  recovery -> first accepted by BFL (s)", fmt(first_after - t_up, 1)),
        Row("  recovery -> last stored (s)", fmt(last_stored - t_up, 1)),
        Row("  tasks accepted while down / 503 answers while down", f"{accepted_meanwhile} / {refused}"),
        Row("  503 answers while down, per account", _counts(refused_each)),
    ]
    section.notes = [once_text,
                     f"{failed_meanwhile} job(s) failed while both were down; all ended {drained:.1f} s after recovery; "
                     f"POSTs not answered 202: {len(fed.refused)}",
                     "503 answers while down, by half second from the outage's start (the accounts' probes): "
                     + "; ".join(probes),
                     "no Retry-After with the 503s: each account cools for fluxhook's backoff (2 s growing to 15 s) "
                     "and is tried again after it"]
    return section, [("(c) 0 failed", failed == 0), ("(c) all stored after", stored == len(records)),
                     ("(c) none sent twice", once)]


# --------------------------------------------------------------------------- dispatch cost


def phase_dispatch(args: argparse.Namespace) -> tuple[Section, list[tuple[str, bool]]]:
    from dataclasses import replace

    from fluxhook.core import job as st
    from fluxhook.core.accounts import Account, CoolingReason, pool_for
    from fluxhook.core.config import Config
    from fluxhook.core.job import Job, new_job_id
    from fluxhook.store.cooldowns import Cooldowns
    from fluxhook.store.keys import KEYS
    from fluxhook.store.slots import Slots

    calls, slots_each = 200, 24
    base = Config(redis_url="redis://unused", bfl_api_key="k", secret_key="s" * 32, api_tokens=("t",))
    directory = tempfile.mkdtemp(prefix="fluxhook-bench-dispatch-")
    server = RedisServer(directory=directory).start()
    results: dict[tuple[int, int], dict[str, float]] = {}
    try:
        db = redis.Redis.from_url(server.url)
        for n_accounts in (1, 2, 4, 8):
            for in_line in (100, 10_000):
                db.flushdb()
                accounts = tuple(Account(f"a{i}", "k", f"http://127.0.0.1:{i + 1}", max_active=slots_each)
                                 for i in range(n_accounts))
                full = Slots(db, replace(base, named_accounts=accounts))
                roomy = Slots(db, replace(base, named_accounts=tuple(replace(a, max_active=10_000) for a in accounts)))
                cooldowns = Cooldowns(db)
                for a in accounts:  # every account cooling: each job goes in line
                    cooldowns.cool(a.name, time.time() + 3600, CoolingReason.UNAVAILABLE)
                now = time.time()
                for _ in range(in_line + slots_each * n_accounts + calls):
                    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
                              input={"prompt": "x"}, created_at=now, updated_at=now)
                    full.acquire(job)
                for a in accounts:
                    db.delete(KEYS.cooling(a.name))
                filled = full.dispatch(limit=10_000)
                assert len(filled) == slots_each * n_accounts, len(filled)
                waiting = full.waiting(full.pool_of(job))
                none, none_server = _timed(db, full.dispatch, calls, expect=0)
                one, one_server = _timed(db, lambda s=roomy: s.dispatch(limit=1), calls, expect=1)
                ping, _ = _timed(db, lambda: [db.ping()], calls, expect=1)
                results[(n_accounts, in_line)] = {"none": none, "one": one, "ping": ping, "waiting": waiting,
                                                  "none_server": none_server, "one_server": one_server}
                log(f"dispatch: {n_accounts} account(s), {waiting} jobs in line: full {none:.3f} ms "
                    f"({none_server:.1f} us in Redis), room {one:.3f} ms ({one_server:.1f} us) (ping {ping:.3f} ms)")
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    section = Section("dispatch cost (information): one Slots.dispatch() call on a bare Redis: the script's "
                      f"time in Redis (mean, INFO commandstats) and the round trip (median), {calls} calls; "
                      f"{slots_each} slots per account, one owner's jobs in line; baseline: 100 jobs in line")
    for n_accounts in (1, 2, 4, 8):
        big, small = results[(n_accounts, 10_000)], results[(n_accounts, 100)]
        for case, label in (("none", "all slots taken: gives none"), ("one", "room: gives one")):
            section.rows += [
                Row(f"{n_accounts} account(s), {label}: in Redis (us)", fmt(big[case + "_server"], 1),
                    fmt(small[case + "_server"], 1), fmt(big[case + "_server"] / small[case + "_server"], 2, "x"),
                    "(info)"),
                Row("    round trip (ms)", fmt(big[case], 3), fmt(small[case], 3), fmt(big[case] / small[case], 2, "x")),
            ]
    section.notes = [f"fluxhook column: 10,000 jobs in line (at least; {results[(1, 10_000)]['waiting']} with one "
                     "account); PING round trip for scale: "
                     + ", ".join(f"{fmt(results[(n, 100)]['ping'], 3)} ms" for n in (1, 2, 4, 8)),
                     "the ratio column is 10,000 jobs over 100 jobs: near 1x means the cost does not grow with the "
                     "jobs in line; down the column it grows with the accounts (each account's pools are read "
                     "in the script)"]
    return section, []


def _timed(db, call, calls: int, expect: int) -> tuple[float, float]:
    """The median round trip of ``call`` (ms), and the microseconds per script call Redis itself reports."""
    took = []
    db.config_resetstat()
    for _ in range(calls):
        started = time.perf_counter()
        given = call()
        took.append((time.perf_counter() - started) * 1000)
        if len(given) != expect:
            raise RuntimeError(f"dispatch gave {len(given)}, expected {expect}")
    stats = db.info("commandstats")
    scripts = [stats[k] for k in ("cmdstat_evalsha", "cmdstat_eval") if k in stats]
    server = sum(s["usec"] for s in scripts) / max(1, sum(s["calls"] for s in scripts))
    return statistics.median(took), server


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    started, load_start = time.monotonic(), loadavg()
    print(f"bench.accounts: phases {','.join(args.phases)}; jobs {args.jobs}, down {args.down_seconds:g} s, tasks "
          f"{args.task_delay:g} s, {args.rate:g} jobs/s, {args.workers} worker processes, {args.max_active} slots per "
          f"account")
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
          f"load average at start: {load_start}", flush=True)
    runners = {"a": phase_a, "b": phase_b, "c": phase_c, "dispatch": phase_dispatch}
    sections, verdicts = [], []
    for phase in PHASES:
        if phase in args.phases:
            section, found = runners[phase](args)
            sections.append(section)
            verdicts += found
    print_report(sections, spaced=True)
    print()
    for label, met in verdicts:
        print(f"{'PASS' if met else 'FAIL'}  {label}")
    print(f"load average at start: {load_start}; at end: {loadavg()}; took {time.monotonic() - started:.0f} s")
    return 0 if all(met for _, met in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
