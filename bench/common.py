"""Shared helpers of the benchmark suite: statistics, the result table, stacks, jobs and callbacks.

Everything here runs on 127.0.0.1 only: the stack's Redis, the BFL simulator, gunicorn (bound
to loopback through ``GUNICORN_CMD_ARGS``) and the workers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import redis
import requests
from rq import Worker

from devtools.processes import ROOT, free_port, python, start_process, stop_process, wait_until
from devtools.stack import SIMULATOR_KEY, Stack, procfile_commands
from fluxhook.core import signing
from fluxhook.lifecycle.steps.enqueueing import download_named
from fluxhook.store.keys import KEYS

# The highest BFL_MAX_ACTIVE the configuration accepts: fluxhook's slots must never make a bench job wait.
MAX_ACTIVE = 10_000
GUNICORN_CONFIG = "python:receiver.gunicorn_conf"
MB = 1_000_000
T = TypeVar("T")


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = pct / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else math.nan


def median_of_reps(reps: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over the repetitions that reported it."""
    keys = {key for rep in reps for key in rep}
    return {key: median(rep[key] for rep in reps if key in rep) for key in keys}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    """One line of the final table."""

    figure: str
    fluxhook: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    """A benchmark's rows plus the notes that say how they were measured."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def verdict(row: Row) -> str:
    """'yes' or 'not met' against a target users hold; nothing for a figure shown for information."""
    return "" if row.met is None else ("yes" if row.met else "not met")


def print_table(sections: list[Section]) -> None:
    """The figures; "(info)" rows are beside their baseline for scale and carry no verdict."""
    headers = ("figure", "fluxhook", "baseline", "ratio", "target", "met")
    rows = [(r.figure, r.fluxhook, r.baseline, r.ratio, r.target, verdict(r)) for s in sections for r in s.rows]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells) -> str:
        return " | ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) if i < 4 else cell.ljust(widths[i])
                          for i, cell in enumerate(cells)).rstrip()

    print(line(headers))
    print("-+-".join("-" * w for w in widths))
    for section in sections:
        print(line((f"[{section.title}]",) + ("",) * 5))
        for r in section.rows:
            print(line((r.figure, r.fluxhook, r.baseline, r.ratio, r.target, verdict(r))))


def print_notes(sections: list[Section]) -> None:
    for section in sections:
        if section.notes:
            print(f"{section.title}:")
            for note in section.notes:
                print(f"  - {note}")


def print_report(sections: list[Section], spaced: bool = False) -> None:
    """A bench's result: the table, then its notes; ``spaced`` sets each apart from the log lines above it by a
    blank line."""
    if spaced:
        print()
    print_table(sections)
    if spaced:
        print()
    print_notes(sections)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- processes and stacks


def exit_on_sigterm() -> None:
    """A SIGTERM ends this process as Ctrl-C does, by an exception, so each ``finally`` on the way out runs: a plain
    `kill` stops the bench's stacks too (their processes run in sessions of their own)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def bench_env(port: int, log_level: str, **extra: str) -> dict[str, str]:
    """Environment of a bench stack: loopback only, fluxhook's slots out of the way, defaults otherwise."""
    env = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": log_level, "PORT": str(port),
           # GUNICORN_CMD_ARGS outranks the config file's 0.0.0.0: benches listen on loopback only.
           "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
           "BFL_MAX_ACTIVE": str(MAX_ACTIVE)}
    env.update(extra)
    return env


class BenchStack:
    """Redis, the simulator and the Procfile's web (and workers on demand) in a temporary directory."""

    def __init__(self, name: str, log_level: str = "INFO", **env: str):
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"fluxhook-bench-{name}-"))
        port = free_port()
        self.stack = Stack(env=bench_env(port, log_level, **env), var_dir=self.var_dir)
        self.workers: list[subprocess.Popen] = []
        self._worker_serial = 0
        self.extra: list[subprocess.Popen] = []

    # -- life cycle

    def start(self, workers: int = 0) -> "BenchStack":
        self.stack.prepare()
        self.stack.env["PUBLIC_BASE_URL"] = self.stack.base_url
        self.stack.start("web")
        if workers:
            self.start_workers(workers)
        return self

    def stop(self) -> None:
        self.stop_workers()
        for process in self.extra:
            stop_process(process)
        self.stack.stop()

    def cleanup(self) -> None:
        """Remove the stack's directory (stored images can be gigabytes)."""
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def __enter__(self) -> "BenchStack":
        return self

    def __exit__(self, *exc_info: object) -> None:
        """``with BenchStack(...) as stack:`` stops and removes the stack however the block ends."""
        self.stop()
        self.cleanup()

    def start_workers(self, count: int, wait: bool = True) -> list[subprocess.Popen]:
        """``count`` more of the Procfile's worker processes; waits until RQ lists them all."""
        command = procfile_commands()["worker"]
        before = Worker.count(connection=self.redis()) if wait else 0
        started = []
        for _ in range(count):
            self._worker_serial += 1
            started.append(start_process(["sh", "-c", "exec " + command], self.env,
                                         log_path=str(self.var_dir / f"worker-{self._worker_serial}.log")))
        self.workers += started
        if wait:
            db = self.redis()
            wait_until(lambda: Worker.count(connection=db) >= before + count, timeout=60, interval=0.05,
                       message=f"{count} worker(s) to register")
        return started

    def stop_workers(self) -> None:
        # All at once: each takes a moment to stop, and they do not depend on each other.
        for process in self.workers:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, 15)
                except ProcessLookupError:
                    pass
        for process in self.workers:
            stop_process(process)
        self.workers = []

    def start_bare_app(self, port: int, redis_write: bool = False, app: str = "") -> subprocess.Popen:
        """The ingest baseline (with one Redis write per request, if asked; or another factory of
        bench.bare_app, ``app``) under the same gunicorn settings module, on 127.0.0.1:``port``."""
        env = dict(self.env, PORT=str(port), GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}")
        gunicorn = str(Path(python()).parent / "gunicorn")
        app = f"bench.bare_app:{app or f'create_app(redis_write={redis_write})'}"
        log_path = self.var_dir / f"bare-{port}.log"
        process = start_process([gunicorn, "--config", GUNICORN_CONFIG, app], env, log_path=str(log_path))
        self.extra.append(process)

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{app} exited; see {log_path}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, timeout=30, message="the bare app to answer /healthz")
        return process

    # -- access

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def sim_base(self) -> str:
        return self.env["BFL_API_BASE"]

    @property
    def web(self) -> subprocess.Popen:
        return self.stack.processes["web"]

    @property
    def images_dir(self) -> Path:
        return Path(self.env["STORAGE_URL"].removeprefix("file://"))

    def redis(self, decode: bool = True) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"], decode_responses=decode)

    def api_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.env['API_TOKENS'].split(',')[0]}"
        return session

    def sim_settings(self, **settings: Any) -> dict:
        response = requests.post(f"{self.sim_base}/_sim/settings", json=settings, timeout=10)
        response.raise_for_status()
        return response.json()

    def sim_stats(self) -> dict:
        response = requests.get(f"{self.sim_base}/_sim/stats", timeout=30)
        response.raise_for_status()
        return response.json()


# --------------------------------------------------------------------------- memory


def tree_memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MB (10^6 bytes) of a process plus all its descendants, read from /proc.

    RSS is VmRSS from /proc/<pid>/status summed over the tree, so pages shared after a fork
    count once per process (the figure the target is about); PSS (smaps_rollup) shares them out.
    """
    rss = pss = 0
    count = 0
    for member in [pid, *descendants(pid)]:
        try:
            rss += _proc_kib(f"/proc/{member}/status", "VmRSS:") * 1024
            pss += _proc_kib(f"/proc/{member}/smaps_rollup", "Pss:") * 1024
            count += 1
        except OSError:
            continue  # ended meanwhile
    if not count:
        return {"rss": math.nan, "pss": math.nan, "processes": 0}
    return {"rss": rss / MB, "pss": pss / MB, "processes": count}


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: the fields follow the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _proc_kib(path: str, label: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(label):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- jobs, tasks and callbacks


def thread_session(local: threading.local, token: str | None = None) -> requests.Session:
    """This thread's keep-alive session, kept in ``local`` (made on first use), with ``token`` as its bearer if given.
    It ignores the environment's proxies: every request of a bench goes to 127.0.0.1."""
    if not hasattr(local, "session"):
        local.session = requests.Session()
        local.session.trust_env = False
        if token:
            local.session.headers["Authorization"] = f"Bearer {token}"
    return local.session


def thread_map(func: Callable[[requests.Session, Any], Any], items: Sequence[Any], threads: int) -> list[Any]:
    """``func(session, item)`` for every item on ``threads`` threads, one keep-alive session per thread."""
    local = threading.local()

    def call(item):
        return func(thread_session(local), item)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(call, items))


@dataclass(frozen=True)
class BenchJob:
    job_id: str
    bfl_id: str
    model: str = "flux-2-pro"


def download_task_ids(db: redis.Redis, job_ids: Sequence[str]) -> list[str]:
    """Each job's last download task's RQ id, as its download lock names it (``enqueueing.queued_download``)."""
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.get(KEYS.download_lock(job_id))
    held = [value.decode() if isinstance(value, bytes) else value for value in pipe.execute()]
    return [download_named(job_id, value) for job_id, value in zip(job_ids, held, strict=True)]


@dataclass(frozen=True)
class StoredDownload:
    """When a stored job's download began and ended (its fetch and store, before its thumbnail), by the wall clock."""

    started: float
    ended: float


def stored_downloads(job_ids: Sequence[str], read: list[list[dict]]) -> list[StoredDownload]:
    """Each stored job's download, from its timeline's entry of it (``read``: ``timelines``; ``storing._notes``: its
    end and its seconds): RQ keeps no record of a job's task that succeeded (``worker.inprocess``)."""
    stored = _first_entries(job_ids, read, "stored download",
                            lambda e: e.get("kind") == "download" and e.get("outcome") == "stored")
    return [StoredDownload(entry["at"] - entry["seconds"], entry["at"]) for entry in stored]


def callback_times(job_ids: Sequence[str], read: list[list[dict]]) -> list[float]:
    """When each job's Ready callback was recorded, from its timeline's entry of it (``read``: ``timelines``; the
    latest callback's)."""
    return [entry["at"] for entry in _first_entries(job_ids, read, "callback", lambda e: e.get("kind") == "callback")]


def _first_entries(job_ids: Sequence[str], read: list[list[dict]], what: str, wanted) -> list[dict]:
    """Each job's newest timeline entry that is ``wanted``; a job without one is an error naming ``what``."""
    found = []
    for job_id, entries in zip(job_ids, read, strict=True):
        entry = next((e for e in entries if wanted(e)), None)
        if entry is None:
            raise RuntimeError(f"job {job_id} has no {what} on its timeline")
        found.append(entry)
    return found


def timelines(db: redis.Redis, job_ids: Sequence[str]) -> list[list[dict]]:
    """Each job's timeline entries, newest first, in one round trip."""
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.lrange(KEYS.timeline(job_id), 0, -1)
    return [[json.loads(entry) for entry in entries] for entries in pipe.execute()]


def create_jobs(stack: BenchStack, count: int, prompt: str = "[pending] [drop] bench", threads: int = 6) -> list[BenchJob]:
    """``count`` jobs through ``POST /v1/jobs`` whose simulator tasks stay Pending and never call back."""
    auth = {"Authorization": f"Bearer {stack.env['API_TOKENS'].split(',')[0]}"}
    url = stack.base_url + "/v1/jobs"

    def create(session: requests.Session, n: int) -> BenchJob:
        response = session.post(url, headers=auth, timeout=30,
                                json={"model": "flux-2-pro", "input": {"prompt": f"{prompt} {n}"}})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
        job = response.json()
        if job["status"] != "submitted" or not job["bfl_id"]:
            raise RuntimeError(f"a bench job is not submitted: {job['status']}")
        return BenchJob(job["id"], job["bfl_id"], job["model"])

    return thread_map(create, range(count), threads)


def ready_body(bfl_id: str, sample_url: str, now: float | None = None) -> bytes:
    """A Ready callback body shaped like BFL's (and the simulator's)."""
    now = time.time() if now is None else now
    return json.dumps({"id": bfl_id, "status": "Ready",
                       "result": {"sample": sample_url, "seed": 1234, "prompt": "bench", "start_time": now - 1.0,
                                  "end_time": now}}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Callback:
    url: str
    headers: dict[str, str]
    body: bytes


def signed_callback(stack: BenchStack, job: BenchJob, sample_url: str) -> Callback:
    """The per-job URL and ``X-Webhook-Secret`` BFL would use for this job."""
    key = stack.env["SECRET_KEY"]
    return Callback(signing.job_webhook_url(stack.base_url, key, job.job_id, job.model),
                    {"Content-Type": "application/json",
                     "X-Webhook-Secret": signing.job_webhook_secret(key, job.job_id)},
                    ready_body(job.bfl_id, sample_url))


def in_turn(settings: Sequence[T], n: int) -> list[T]:
    """Settings measured side by side take turns request by request, which one goes first rotating with ``n``, so
    whatever the machine does meanwhile (the simulator, the workers, other processes) falls on each alike."""
    first = n % len(settings)
    return [*settings[first:], *settings[:first]]


def unfetched_sample(stack: BenchStack, job: BenchJob) -> str:
    """A delivery URL of the simulator's shape, for callbacks whose image no worker fetches."""
    return f"{stack.sim_base}/delivery/{job.bfl_id}.png?exp=4102444800&sig=bench"


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def timed_ready_callback(session: requests.Session, stack: BenchStack, job: BenchJob,
                         sample_url: str | None = None) -> tuple[requests.Response, float]:
    """BFL's signed Ready callback of ``job`` naming ``sample_url`` (by default an image never fetched); the answer
    and its round trip in ms."""
    callback = signed_callback(stack, job, sample_url or unfetched_sample(stack, job))
    started = time.perf_counter()
    response = session.post(callback.url, data=callback.body, headers=callback.headers, timeout=30)
    return response, elapsed_ms(started)


def send_ready_callback(session: requests.Session, stack: BenchStack, job: BenchJob, sample_url: str | None = None) -> float:
    """``timed_ready_callback``'s round trip in ms; an answer other than 200 stops the bench, for a refused callback's
    job never ends and its time is no acknowledgement's."""
    response, took = timed_ready_callback(session, stack, job, sample_url)
    if response.status_code != 200:
        raise RuntimeError(f"callback answered {response.status_code}: {response.text[:200]}")
    return took


def complete_and_sample(session: requests.Session, sim_base: str, bfl_id: str) -> str:
    """Complete a Pending simulator task (Ready) and return its signed delivery URL (costs one get_result)."""
    response = session.post(f"{sim_base}/_sim/tasks/{bfl_id}/complete", json={"outcome": "ready"}, timeout=30)
    response.raise_for_status()
    result = session.get(f"{sim_base}/v1/get_result", params={"id": bfl_id}, headers={"x-key": SIMULATOR_KEY},
                         timeout=30)
    result.raise_for_status()
    return result.json()["result"]["sample"]


def submit_sim_task(session: requests.Session, sim_base: str, prompt: str) -> dict:
    """Submit a task straight to the simulator (no webhook): ``{"id", "polling_url"}``."""
    response = session.post(f"{sim_base}/v1/flux-2-pro", json={"prompt": prompt}, headers={"x-key": SIMULATOR_KEY},
                            timeout=30)
    response.raise_for_status()
    return response.json()


def fetch(session: requests.Session, url: str) -> int:
    """GET ``url`` and read the whole body; its size."""
    response = session.get(url, timeout=60)
    response.raise_for_status()
    return len(response.content)


def read_jobs(db: redis.Redis, job_ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, str | None]]:
    """Fields of many job hashes in one round trip."""
    pipe = db.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(KEYS.job(job_id), list(fields))
    return [dict(zip(fields, values, strict=False)) for values in pipe.execute()]


TERMINAL = ("stored", "failed", "expired", "moderated")


def wait_all_terminal(db: redis.Redis, job_ids: Sequence[str], timeout: float, interval: float = 0.1) -> float:
    """Wait until every job is terminal (asking only about those that are not yet); the time it took."""
    started = time.monotonic()
    pending = list(job_ids)
    while pending:
        pending = [j for j, r in zip(pending, read_jobs(db, pending, ("status",)), strict=False) if r["status"] not in TERMINAL]
        if not pending:
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"after {timeout:.0f} s, {len(pending)} of {len(job_ids)} jobs have not ended")
        time.sleep(interval)
    return time.monotonic() - started


def metrics_counts(db: redis.Redis) -> dict[str, float]:
    """fluxhook's counters as kept in Redis (``KEYS.metrics``: what ``/metrics`` renders), by field."""
    return {k: float(v) for k, v in db.hgetall(KEYS.metrics).items()}


def counter(counts: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a counter's fields whose labels include ``labels``."""
    total = 0.0
    for field_name, value in counts.items():
        parts = field_name.split("\x1f")
        if parts[0] != name:
            continue
        have = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def wrk(url: str, script: Path, duration: float, connections: int, threads: int, *args: str) -> dict:
    """One run of ``wrk`` (it stops by itself after ``duration`` s) with a Lua ``script`` whose ``done()`` prints
    a ``WRKJSON {...}`` line; those figures, with ``rps``, ``non2xx`` and ``socket_errors`` added."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script), url,
               "--", *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    line = next((row for row in out.stdout.splitlines() if row.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures: {out.stdout}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["non2xx"] = figures["status"]
    figures["socket_errors"] = sum(figures[k] for k in ("connect", "read", "write", "timeout"))
    return figures


def project_root() -> Path:
    return ROOT
