"""Benchmark: what a stored job costs Redis, beside f16fbba measured in the same run.

    .venv/bin/python -m bench.redis_cost [--quick] [--jobs 150,450] [--accounts 1,2] [--baseline-tree DIR|none]
                                         [--retained 100000] [--replay/--no-replay] [--steps/--no-steps]
                                         [--submit-delay 1] [--task-delay 8]

Each run starts Redis, this tree's BFL simulator (one or two accounts of 24 slots, every submission answered
after ``--submit-delay`` s, every task ending after ``--task-delay`` s, 1 MP JPEGs) and one web and one worker
process (the Procfile's) of the tree measured, posts the jobs at once through ``POST /v1/jobs`` (32 clients)
and waits until every job is stored with its thumbnail. The figures are Redis's own, read with ``INFO all``:

- commands per stored job: the ``calls`` of every ``cmdstat_*`` (commands run inside Lua scripts included, as
  Redis counts them) from just before the first POST to a second after the last thumbnail, over the jobs
  stored; "less idle" subtracts what the same stack ran per second in the 30 s before the jobs (its loops,
  heartbeats and polls, and Redis's own cron: what a stack with no job costs anyway). The window holds whole
  periods of the stack's slowest rounds (RQ's maintenance every 15 s, an idle lane's beat every 30 s), which a
  shorter one would miss or catch at random and charge to the jobs;
- socket reads per stored job (``total_reads_processed``), the same way: about one a round trip, each costing Redis
  the kernel's socket and ``epoll`` work whatever it carries;
- Redis CPU per stored job: ``used_cpu_user + used_cpu_sys`` of the server over the same window, the same way;
  and this machine's Redis CPU for one lone round trip (``PING``), the least of three runs of 2,000 after the jobs,
  to read a job's CPU beside;
- memory per job (Redis holding ``--retained`` keys with a 30-day TTL first, 100,000 by default, as a deployment's
  holds its finished jobs': Redis's expiry, which walks them all, finds a key a run leaves to expire as late as it
  would in production): ``used_memory`` after, less before, over the jobs; then the jobs' part of it, less what does not
  grow with jobs but with the run (the scripts loaded, the clients' buffers, the AOF's and replication's buffers:
  ``FIXED_MEMORY``; on Redis 7 each command's latency histogram), once the census has swept the keys that expired,
  and at its peak while the jobs run; and a census of every key (``MEMORY USAGE``, ``TTL``) after, less before: what
  the jobs hold, and what of it is left once keys with an hour or less to live have gone (RQ's finished records are
  kept an hour) -- the finished record;
- the ten commands with most calls and most ``usec`` per job (a script's ``usec`` includes the commands it runs).

The bench's own commands are kept out of the figures: it waits on the thumbnail files in the images directory
(no Redis command), confirms the last ones with ``HSTRLEN`` (a command fluxhook never sends: its whole
``cmdstat_hstrlen`` is the bench's) and reads ``INFO``; both are subtracted, calls, usec and reads. The census and the
job reads run outside the window.

Each configuration (jobs x accounts) runs with this tree, then with the baseline: a detached ``git worktree`` of
f16fbba (made when missing, removed at the end if this run made it), its web and worker started from that tree.
``--replay`` (on by default) then runs the first configuration again under ``MONITOR`` with each tree and replays its
commands in order on a Redis of their own (``bench/redis_replay.py``), one a round trip and all in one stream: Redis's
own work per job apart from its round trips, and what a round trip costs it; and eight copies of the run at once, each
in a database of its own (``bench/redis_busy.py``): what a job costs a busy Redis, and so how many jobs a second one
core carries (at the bench's load Redis idles nearly all the time, and each wake-up finds its caches cold).
``--steps`` (on by default) then runs one job under ``MONITOR`` with each tree and attributes every command to its
lifecycle step (``bench/redis_steps.py``). The server is the suite's (``FLUXHOOK_REDIS_SERVER``); `make bench-redis`
takes Debian's current one, as deployed, unless that is set. Every Redis of the bench runs alone on the bench's last
CPU, and the bench with the stack on the others (``--redis-core``), as a deployment's Redis has a core of its own;
``--no-redis-core`` lets all share every CPU, as stops 72 to 74 measured.
About 25 minutes; ``--quick``: 150 jobs, one account.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devtools.processes import redis_server_binary

from .redis_stack import TreeStack, give_redis_a_core, post_jobs, wait_thumbnails

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "f16fbba"
IDLE_SECONDS = 30.0
# A retention's keys (--retained): a finished job's record is about 850 B, its timeline and task index beside it.
RETAINED_TTL = 30 * 86400
RETAINED_VALUE = "x" * 200
SETTLE_SECONDS = 1.0
# The replay's trips spaced as the bench's load spaces a Redis's work: idle between them.
APART = 0.002
RUN_TIMEOUT = 900.0
HOUR = 3600
# The bench's own commands: INFO (its snapshots), HSTRLEN (its last check of the thumbnails), and ECHO (its
# probe of Redis 7's latency histograms, below).
OWN = ("info", "hstrlen", "echo")
# The bench's checks of the records go in pipelines this long: each one read of Redis's (about 5 KB).
CHECKS = 60
# What a key's name holds that differs job by job, for the census's patterns.
_IDS = [(re.compile(r"job_[0-9A-Z]{26}"), "<job>"),
        (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
        (re.compile(r"[0-9a-f]{32}"), "<hex>"),
        (re.compile(r"(?<=[:_-])[0-9]+(?=$|:)"), "<n>")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="150 jobs, one account only")
    parser.add_argument("--jobs", default="150,450", help="comma-separated job counts")
    parser.add_argument("--accounts", default="1,2", help="comma-separated account counts (1 or 2)")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission")
    parser.add_argument("--task-delay", type=float, default=8.0, help="seconds a task takes at BFL")
    parser.add_argument("--baseline-tree", default=f"/tmp/bench-{BASELINE_COMMIT}",
                        help=f"checkout of {BASELINE_COMMIT} ('none': no baseline)")
    parser.add_argument("--steps", action=argparse.BooleanOptionalAction, default=True,
                        help="one job under MONITOR per tree, its commands by lifecycle step")
    parser.add_argument("--retained", type=int, default=100_000,
                        help="keys with a 30-day TTL in Redis before the stack's idle window, as a retention keeps them")
    parser.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True,
                        help="a run of the first configuration under MONITOR per tree, its commands replayed in "
                             "order on a Redis of their own: Redis's own work per job, and a round trip's cost")
    parser.add_argument("--redis-core", action=argparse.BooleanOptionalAction, default=True,
                        help="Redis alone on the last CPU, the bench and the stack on the others, as a deployment "
                             "runs Redis on a core of its own (--no-redis-core: all share every CPU)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.jobs = [150] if args.quick else [int(v) for v in args.jobs.split(",") if v.strip()]
    args.accounts = [1] if args.quick else [int(v) for v in args.accounts.split(",") if v.strip()]
    if not args.jobs or not set(args.accounts) <= {1, 2}:
        parser.error("--jobs needs at least one count; --accounts is among 1, 2")
    return args


# --------------------------------------------------------------------------- Redis's own figures


# What ``used_memory`` counts beside the data, grown by the run and not by the jobs (Redis 6.2 and 7 alike): the
# scripts each process loads once (about 100 KB at the first jobs), the buffers of the clients connected (each web
# thread's connection: about 250 KB at 150 jobs), the AOF's and replication's buffers. Lua's own heap
# (``used_memory_lua``) is not in ``used_memory``.
FIXED_MEMORY = ("used_memory_scripts", "mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer",
                "mem_replication_backlog")
# Redis 7's latency tracking (on by default) gives each command a histogram at its first call: about 27 KB that
# ``INFO`` names nowhere and that grows with the commands used, not with the jobs. A command fluxhook never sends
# (``ECHO``) shows its size: ``used_memory`` after its first call, less before (none on 6.2).
HISTOGRAM_PROBE = OWN[2]
# Less than this is not a histogram (they are tens of KB) but an allocation's rounding.
HISTOGRAM_LEAST = 1024


@dataclass
class Snapshot:
    """What ``INFO all`` says at one moment: calls and usec by command, server CPU seconds, the reads of client
    sockets (``total_reads_processed``: a round trip is one, more for a long pipeline), used memory and the part of
    it that is not the data (``FIXED_MEMORY``, and ``histogram`` bytes for each command called)."""

    at: float
    calls: dict[str, int]
    usec: dict[str, int]
    cpu: float
    reads: int
    memory: int
    fixed: int

    @property
    def data(self) -> int:
        return self.memory - self.fixed

    @classmethod
    def take(cls, db: redis.Redis, histogram: int = 0) -> "Snapshot":
        info = db.info("all")
        calls, usec = {}, {}
        for key, value in info.items():
            if key.startswith("cmdstat_"):
                name = key.removeprefix("cmdstat_").lower()
                calls[name], usec[name] = int(value["calls"]), int(value["usec"])
        fixed = fixed_memory(info) + histogram * sum(1 for c in calls.values() if c)
        return cls(time.monotonic(), calls, usec, float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
                   int(info["total_reads_processed"]), int(info["used_memory"]), fixed)


def fixed_memory(info: dict) -> int:
    """The bytes of ``used_memory`` in an ``INFO`` answer that grow with the run, not the jobs (``FIXED_MEMORY``)."""
    return sum(int(info.get(name, 0)) for name in FIXED_MEMORY)


def histogram_size(db: redis.Redis) -> int:
    """The bytes of one command's latency histogram on this server: 0 where there are none (6.2, or tracking off).
    Read in one MULTI, so no other client's command falls between the two readings."""
    if db.info("commandstats").get(f"cmdstat_{HISTOGRAM_PROBE}"):
        raise RuntimeError(f"{HISTOGRAM_PROBE.upper()} was called before the probe: its histogram cannot be seen")
    pipe = db.pipeline(transaction=True)
    pipe.info("memory")
    pipe.echo("histogram")
    pipe.info("memory")
    before, _, after = pipe.execute()
    grown = (after["used_memory"] - fixed_memory(after)) - (before["used_memory"] - fixed_memory(before))
    return grown if grown >= HISTOGRAM_LEAST else 0


def delta(before: Snapshot, after: Snapshot, own: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Calls and usec by command between two snapshots, the bench's own commands (``own``: calls by name, all
    their usec) left out."""
    found = {}
    for name, calls in after.calls.items():
        if name in OWN:
            extra = calls - before.calls.get(name, 0) - own.get(name, 0)
            if extra > 0:
                print(f"  note: {extra} {name.upper()} not the bench's (counted as the stack's)", flush=True)
                found[name] = (extra, 0)
            continue
        count = calls - before.calls.get(name, 0)
        if count:
            found[name] = (count, after.usec[name] - before.usec.get(name, 0))
    return found


def own_usec(before: Snapshot, after: Snapshot) -> float:
    return sum(after.usec.get(n, 0) - before.usec.get(n, 0) for n in OWN)


def census(db: redis.Redis) -> dict[str, list[float]]:
    """Every key's pattern (ids replaced), with [keys, bytes, bytes of the keys with more than an hour to live]."""
    found: dict[str, list[float]] = {}
    pipe = db.pipeline(transaction=False)
    names = list(db.scan_iter(count=1000))
    for name in names:
        pipe.memory_usage(name, samples=0)
        pipe.ttl(name)
    answers = pipe.execute()
    for i, name in enumerate(names):
        size, ttl = answers[2 * i] or 0, answers[2 * i + 1]
        pattern = name
        for regex, word in _IDS:
            pattern = regex.sub(word, pattern)
        row = found.setdefault(pattern, [0, 0, 0])
        row[0] += 1
        row[1] += size
        row[2] += size if ttl == -1 or ttl > HOUR else 0
    return found


def census_growth(before: dict, after: dict, jobs: int) -> list[tuple[str, float, float, float]]:
    """Per job, by pattern: keys, bytes, bytes left after an hour; biggest first."""
    rows = []
    for pattern in set(before) | set(after):
        b, a = before.get(pattern, [0, 0, 0]), after.get(pattern, [0, 0, 0])
        rows.append((pattern, (a[0] - b[0]) / jobs, (a[1] - b[1]) / jobs, (a[2] - b[2]) / jobs))
    return sorted(rows, key=lambda r: -r[2])


# --------------------------------------------------------------------------- one run


@dataclass
class Figures:
    tree: str
    jobs: int
    accounts: int
    stored: int = 0
    refused: int = 0
    seconds: float = 0.0
    idle_per_s: float = 0.0
    idle_cpu_ms_per_s: float = 0.0
    reads: float = 0.0
    reads_less_idle: float = 0.0
    histogram: int = 0
    commands: float = 0.0
    commands_less_idle: float = 0.0
    cpu_ms: float = 0.0
    cpu_ms_less_idle: float = 0.0
    memory: float = 0.0
    memory_jobs: float = 0.0
    memory_jobs_peak: float = 0.0
    round_trip_us: float = 0.0
    keys_bytes: float = 0.0
    keys_after_hour: float = 0.0
    keys: float = 0.0
    top_calls: list = field(default_factory=list)
    top_usec: list = field(default_factory=list)
    census: list = field(default_factory=list)


def retain(db: redis.Redis, count: int) -> None:
    """``count`` keys with a retention's TTL, as a deployment's Redis holds its finished jobs' for
    ``JOB_RETENTION_DAYS``: Redis finds a key that expired by walking every key with a TTL, a few hundred a second,
    so what a run leaves to expire lingers among them as it would in production, not as in an empty Redis."""
    for first in range(0, count, 10_000):
        pipe = db.pipeline(transaction=False)
        for n in range(first, min(first + 10_000, count)):
            pipe.set(f"bench:retained:{n}", RETAINED_VALUE, ex=RETAINED_TTL)
        pipe.execute()


def measure(tree: Path, label: str, jobs: int, accounts: int, args: argparse.Namespace) -> Figures:
    stack = TreeStack(tree, accounts, args.submit_delay, args.task_delay)
    figures = Figures(label, jobs, accounts)
    try:
        stack.start()
        db = stack.redis()
        retain(db, args.retained)
        time.sleep(3.0)  # the worker's first rounds (schedulers, cron, migrations) are not an idle second's cost
        keys_before = census(db)
        figures.histogram = histogram_size(db)
        own = {"info": 0, "hstrlen": 0}

        def info() -> Snapshot:
            own["info"] += 1
            return Snapshot.take(db, figures.histogram)

        idle_start = info()
        time.sleep(IDLE_SECONDS)
        start = info()
        own = {"info": 0, "hstrlen": 0}  # counted from the start snapshot on: its own INFO shows in the next
        own["info"] += 1
        own_reads = 0
        peak = [start.data]

        def sample() -> None:
            peak.append(info().data)

        ids, refused = post_jobs(stack, jobs)
        figures.refused = len(refused)
        wait_thumbnails(stack, ids, RUN_TIMEOUT, tick=sample)
        # The thumbnail's file is written just before its record names it: wait for the record too.
        pending = list(ids)
        while pending:
            found = []
            for first in range(0, len(pending), CHECKS):
                pipe = db.pipeline(transaction=False)
                for job_id in pending[first:first + CHECKS]:
                    pipe.hstrlen(f"fh:job:{job_id}", "thumbnail_key")
                found += pipe.execute()
                own_reads += 1
            own["hstrlen"] += len(pending)
            pending = [j for j, n in zip(pending, found, strict=True) if not n]
            time.sleep(0.1 if pending else SETTLE_SECONDS)
        # Its own INFO shows in no command's figure; its read shows in end.reads, as the start's did in start.reads,
        # so the window's reads hold one INFO read a snapshot taken after the start (own["info"] counts the start's).
        end = Snapshot.take(db, figures.histogram)
        figures.seconds = end.at - start.at
        statuses = [db.hget(f"fh:job:{j}", "status") for j in ids]
        figures.stored = sum(s == "stored" for s in statuses)
        per_job = max(figures.stored, 1)
        idle_seconds = start.at - idle_start.at
        idle = delta(idle_start, start, {"info": 1})
        idle_calls = sum(c for c, _ in idle.values()) / idle_seconds
        idle_cpu = (start.cpu - idle_start.cpu - own_usec(idle_start, start) / 1e6) / idle_seconds
        figures.idle_per_s, figures.idle_cpu_ms_per_s = idle_calls, idle_cpu * 1000
        run = delta(start, end, own)
        total = sum(c for c, _ in run.values())
        figures.commands = total / per_job
        figures.commands_less_idle = (total - idle_calls * figures.seconds) / per_job
        idle_reads = (start.reads - idle_start.reads - 1) / idle_seconds
        reads = end.reads - start.reads - own["info"] - own_reads  # the end's read for the start's
        figures.reads = reads / per_job
        figures.reads_less_idle = (reads - idle_reads * figures.seconds) / per_job
        cpu = end.cpu - start.cpu - own_usec(start, end) / 1e6
        figures.cpu_ms = cpu * 1000 / per_job
        figures.cpu_ms_less_idle = (cpu - idle_cpu * figures.seconds) * 1000 / per_job
        figures.memory = (end.memory - start.memory) / per_job
        figures.memory_jobs_peak = (max(peak) - start.data) / per_job
        figures.top_calls = sorted(((n, c / per_job, u / per_job / 1000) for n, (c, u) in run.items()),
                                   key=lambda r: -r[1])[:10]
        figures.top_usec = sorted(((n, c / per_job, u / per_job / 1000) for n, (c, u) in run.items()),
                                  key=lambda r: -r[2])[:10]
        growth = census_growth(keys_before, census(db), per_job)
        # Read after the census, whose SCAN frees the keys that expired and that Redis had not yet looked at (the
        # baseline's RQ records of its tasks, kept a second): what the jobs hold, not what Redis has still to sweep.
        figures.memory_jobs = (Snapshot.take(db, figures.histogram).data - start.data) / per_job
        figures.census = [r for r in growth if r[2] >= 1][:14]
        figures.keys = sum(r[1] for r in growth)
        figures.keys_bytes = sum(r[2] for r in growth)
        figures.keys_after_hour = sum(r[3] for r in growth)
        figures.round_trip_us = round_trip_cpu(db)
    finally:
        stack.stop()
    return figures


def round_trip_cpu(db: redis.Redis, count: int = 2000) -> float:
    """This machine's Redis CPU for one lone round trip (a ``PING`` from one client, waiting for each answer), in
    microseconds, read beside a job's CPU: much of that is the round trips' (the kernel's socket and ``epoll`` work),
    whose cost is the machine's more than fluxhook's, and varies with it from run to run."""
    costs = []
    for _ in range(3):  # the least of three: another process's work on the machine only ever adds to one
        before = Snapshot.take(db)
        for _ in range(count):
            db.ping()
        after = Snapshot.take(db)
        costs.append((after.cpu - before.cpu) * 1e6 / count)
    return min(costs)


# --------------------------------------------------------------------------- the baseline's checkout


def ensure_baseline(tree: Path) -> bool:
    """A detached worktree of BASELINE_COMMIT at ``tree`` unless one is there; whether this call made it."""
    if (tree / "Procfile").exists():
        return False
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE_COMMIT],
                   check=True, timeout=120, capture_output=True)
    return True


def remove_baseline(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False, timeout=120,
                   capture_output=True)


# --------------------------------------------------------------------------- the tables


def server_version() -> str:
    """The redis-server measured (``FLUXHOOK_REDIS_SERVER``, as the suite chooses it): its version and allocator."""
    found = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    fields = dict(word.split("=", 1) for word in found.split() if "=" in word)
    return f"Redis {fields.get('v', '?')} ({fields.get('malloc', '?')})"


def kib(value: float) -> str:
    return f"{value / 1024:.1f} KiB"


def print_summary(results: list[Figures]) -> None:
    print("\n| jobs | accounts | code | stored | commands / job | less idle | socket reads / job (less idle) "
          "| Redis CPU / job | less idle | used_memory / job | the jobs' (at peak) | keys / job (after 1 h) | run s "
          "| idle commands/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in results:
        print(f"| {f.jobs} | {f.accounts} | {f.tree} | {f.stored}/{f.jobs} | {f.commands:.0f} | "
              f"{f.commands_less_idle:.0f} | {f.reads:.1f} ({f.reads_less_idle:.1f}) | {f.cpu_ms:.2f} ms | "
              f"{f.cpu_ms_less_idle:.2f} ms | {kib(f.memory)} | "
              f"{kib(f.memory_jobs)} ({kib(f.memory_jobs_peak)}) | "
              f"{kib(f.keys_bytes)} ({kib(f.keys_after_hour)}) | {f.seconds:.0f} | {f.idle_per_s:.0f} |")


def print_tops(results: list[Figures]) -> None:
    for f in results:
        print(f"\n{f.jobs} jobs, {f.accounts} account(s), {f.tree}: a lone round trip (PING) cost Redis "
              f"{f.round_trip_us:.1f} µs of CPU here")
        calls = ", ".join(f"{n.upper()} {c:.1f}" for n, c, _ in f.top_calls)
        usec = ", ".join(f"{n.upper()} {u:.2f} ms" for n, _, u in f.top_usec)
        print(f"\n{f.jobs} jobs, {f.accounts} account(s), {f.tree}:\n  by calls / job: {calls}\n"
              f"  by usec / job:  {usec}")


def print_census(results: list[Figures]) -> None:
    for f in results:
        print(f"\nkeys per job, {f.jobs} jobs, {f.accounts} account(s), {f.tree}: {f.keys:.1f} keys")
        for pattern, keys, size, after in f.census:
            print(f"  {pattern:<60} {keys:5.2f} keys {size:8.0f} B  after 1 h {after:8.0f} B")


@dataclass
class Replays:
    """A tree's run replayed (``redis_replay``): Redis's CPU per job with each command its own round trip (the reads
    it took) and with all in one stream, the commands sent per job, and what that makes of one round trip and of the
    round trips the measured run took (``at_run_trips``: its reads less idle, each at that cost, over the stream)."""

    tree: str
    jobs: int
    accounts: int
    sent: float
    each_trip_us: float
    each_trip_reads: float
    stream_us: float
    errors: int
    trip_us: float
    at_run_trips_us: float
    busy: list[dict]  # redis_busy.Busy's fields, MONITOR's round trips then one a command: a busy Redis
    scripts_us: tuple[float, float, float]  # the scripts' own time per job (µs): in one stream, one a trip, APART apart


def replayed(trees: list[tuple[str, Path]], results: list[Figures], args: argparse.Namespace) -> list[Replays]:
    """Each tree's run of the first configuration captured and replayed both ways (``redis_replay``)."""
    from .redis_busy import busy
    from .redis_replay import STREAM, capture, replay

    jobs, accounts = args.jobs[0], args.accounts[0]
    found = []
    for label, tree in trees:
        captured = capture(tree, jobs, accounts, args.submit_delay, args.task_delay)
        each, stream, apart = replay(captured, 1), replay(captured, STREAM), replay(captured, 1, APART)
        trip = (each.cpu_us - stream.cpu_us) / max(each.reads - stream.reads, 1e-9)
        run = next(f for f in results if (f.tree, f.jobs, f.accounts) == (label, jobs, accounts))
        found.append(Replays(label, jobs, accounts, len(captured.run) / max(captured.jobs, 1), each.cpu_us,
                             each.reads, stream.cpu_us, each.errors, trip,
                             stream.cpu_us + trip * run.reads_less_idle,
                             [busy(captured, one).__dict__ for one in (False, True)],
                             (stream.scripts_us, each.scripts_us, apart.scripts_us)))
    print(f"\nReplayed ({jobs} jobs, {accounts} account(s)): the run's commands in order on a Redis of their own\n")
    print("| code | commands sent / job | one a round trip: CPU / job (reads) | in one stream: CPU / job "
          "| one round trip | at the measured run's round trips | errors answered |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in found:
        print(f"| {r.tree} | {r.sent:.1f} | {r.each_trip_us / 1000:.2f} ms ({r.each_trip_reads:.1f}) | "
              f"{r.stream_us / 1000:.2f} ms | {r.trip_us:.1f} µs | {r.at_run_trips_us / 1000:.2f} ms | {r.errors} |")
    print("\nThe scripts' own time per job (EVALSHA's usec, what they run included; not the round trips), as Redis "
          "idles between commands or not:\n")
    print(f"| code | in one stream | one a round trip | one a round trip, {APART * 1000:.0f} ms apart |")
    print("| --- | --- | --- | --- |")
    for r in found:
        print(f"| {r.tree} | " + " | ".join(f"{us / 1000:.2f} ms" for us in r.scripts_us) + " |")
    print(f"\nA busy Redis ({jobs} jobs, {accounts} account(s); redis_busy): copies of the run at once, each in its own "
          "database; one core's jobs/s is the CPU per job's, as far as Redis was busy\n")
    print("| code | sent as | copies | round trips / job (reads) | Redis busy | CPU / stored job | jobs/s replayed "
          "| one core: jobs/s | errors answered, all copies |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in found:
        for b, sent in zip(r.busy, ("MONITOR's round trips", "one command a trip"), strict=True):
            print(f"| {r.tree} | {sent} | {b['copies']} | {b['trips']:.1f} ({b['reads']:.1f}) | {b['busy']:.0%} | "
                  f"{b['cpu_us'] / 1000:.2f} ms | {b['jobs_per_second']:.0f} | {1e6 / b['cpu_us']:.0f} | "
                  f"{b['errors']} |")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    baseline = None if args.baseline_tree == "none" else Path(args.baseline_tree)
    made = ensure_baseline(baseline) if baseline else False
    trees = [("fluxhook", ROOT)] + ([(BASELINE_COMMIT, baseline)] if baseline else [])
    placed = give_redis_a_core() if args.redis_core else "Redis, the bench and the stack share every CPU"
    print(f"bench-redis: jobs {args.jobs}, accounts {args.accounts}; BFL answers a submission after "
          f"{args.submit_delay} s, tasks take {args.task_delay} s; one web, one worker process; {server_version()}; "
          f"{placed}", flush=True)
    results: list[Figures] = []
    try:
        for accounts in args.accounts:
            for jobs in args.jobs:
                for label, tree in trees:
                    started = time.monotonic()
                    f = measure(tree, label, jobs, accounts, args)
                    results.append(f)
                    print(f"  {jobs} jobs, {accounts} account(s), {label}: {f.commands:.0f} commands "
                          f"({f.commands_less_idle:.0f} less idle), {f.cpu_ms:.2f} ms CPU, "
                          f"{kib(f.memory)} per job ({kib(f.memory_jobs)} the jobs'; a command's latency histogram "
                          f"{f.histogram} B)  [{time.monotonic() - started:.0f} s]", flush=True)
        print_summary(results)
        print_tops(results)
        print_census(results)
        replays = replayed(trees, results, args) if args.replay else []
        steps = {}
        if args.steps:
            from .redis_steps import print_steps, single_job

            for label, tree in trees:
                steps[label] = single_job(tree, args.submit_delay, args.task_delay)
            print_steps(steps)
        if args.json:
            Path(args.json).write_text(json.dumps({"runs": [f.__dict__ for f in results], "steps": steps,
                                                   "replays": [r.__dict__ for r in replays]}, indent=1))
    finally:
        if made:
            remove_baseline(baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
