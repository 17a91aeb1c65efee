"""Chaos soak (``make soak``): the Procfile's processes under random faults while apps keep submitting.

    SOAK_MINUTES=10 SOAK_SEED=1 [SOAK_BATCH_ITEMS=100] [SOAK_FAULTS=kill_worker,...] .venv/bin/python -m devtools.soak

One web (gunicorn, 2 processes) and 2 workers on a real Redis with AOF, the BFL simulator (some
callbacks dropped, some sent twice), images on a small tmpfs when run as root. For SOAK_MINUTES a
client submits about 2 jobs a second (fluxhook.client: an Idempotency-Key per job, retries) and
a batch of SOAK_BATCH_ITEMS items every minute (0: none), and every 5-15 s one fault is injected at random (of
SOAK_FAULTS' names when set, e.g. ``kill_worker`` alone for workers killed at random under batches): a web process
or a worker SIGKILLed or SIGTERMed
(workers are started again), Redis restarted, the disk filled for 20 s, BFL slow to call back or
answering submissions 503 (out of capacity) for 20 s. Then the faults stop, everything runs, and the soak waits
for every job to end. It reports
jobs submitted (single and batch items), stored, failed by code, lost (never terminal), stored twice, sent to BFL
twice (two of the simulator's tasks with one job's prompt; every prompt is unique), callbacks answered
late (> 1 s) or not 2xx, and the longest time an acknowledged job took; it exits 1 if any job was
lost, stored twice or sent twice. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import collections
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis
import requests

from devtools.processes import RedisServer, free_port, python, require_tools, start_process, stop_process, wait_until
from devtools.stack import SIMULATOR_KEY, procfile_commands, start_simulator
from fluxhook import client as fluxhook_client
from fluxhook.core import job as st
from fluxhook.store.keys import KEYS

DRAIN_SECONDS = 600
FAULT_GAP = (5.0, 15.0)
# How often the app submits a batch (SOAK_BATCH_ITEMS items), the first after a few seconds.
BATCH_EVERY = 60.0


def logged_requests(var: Path) -> Iterator[dict]:
    """The requests the web processes of ``var`` logged, each its JSON entry (a line that is not one is skipped)."""
    for log in var.glob("web-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "request":
                yield entry


class Soak:
    """The processes of one soak, the faults done to them, and what the client saw."""

    def __init__(self, minutes: float, seed: int, batch_items: int = 0, faults: tuple[str, ...] = ()):
        self.minutes, self.rng = minutes, random.Random(seed)
        self.batch_items, self.fault_names = batch_items, faults
        self.var = Path(tempfile.mkdtemp(prefix="fluxhook-soak-"))
        self.redis = RedisServer(directory=str(self._dir("redis"))).start()
        self.disk = self._dir("images")
        self.tmpfs = os.geteuid() == 0 and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(self.disk)], capture_output=True).returncode == 0
        sim_port = free_port()
        self.simulator = start_simulator(sim_port, str(self.var / "simulator.log"), "--task-delay", "1.0")
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self._start_service({"REDIS_URL": self.redis.url}, self.disk, sim_port)
        self.jobs: list[str] = []
        self.batches: list[str] = []
        self.batch_jobs = 0
        self.submit_errors: collections.Counter = collections.Counter()
        self.faults: collections.Counter = collections.Counter()
        self.stop = threading.Event()

    def _start_service(self, redis_env: dict[str, str], images: Path, sim_port: int, **extra: str) -> None:
        """The environment of the Procfile's processes (Redis as ``redis_env`` says, the simulator on
        ``sim_port``, ``extra``), then one web process and two workers."""
        web_port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.env = dict(os.environ, **redis_env, BFL_API_KEY=SIMULATOR_KEY, BFL_API_BASE=self.sim_url,
                        RESULT_HOST_ALLOWLIST=f"127.0.0.1:{sim_port}", API_HOST_ALLOWLIST=f"127.0.0.1:{sim_port}",
                        SECRET_KEY=secrets.token_urlsafe(32), API_TOKENS=self.token, PORT=str(web_port),
                        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}", STORAGE_URL=f"file://{images}",
                        CALLBACK_GRACE_SECONDS="5", WEB_CONCURRENCY="2", LOG_LEVEL="INFO",
                        # BFL's limit and the simulator's are the same 24, as with a real account.
                        BFL_MAX_ACTIVE="24",
                        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{web_port}",
                        PATH=os.pathsep.join([str(Path(python()).parent), os.environ.get("PATH", "")]), **extra)
        self.base_url = f"http://127.0.0.1:{web_port}"
        self.commands = procfile_commands()
        self.web = self._start("web")
        wait_until(self._web_answers, timeout=30, message="the web process")
        self.workers = [self._start("worker", n) for n in range(2)]

    def _dir(self, name: str) -> Path:
        path = self.var / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start(self, kind: str, n: int = 0) -> subprocess.Popen:
        return start_process(["sh", "-c", "exec " + self.commands[kind]], self.env,
                             log_path=str(self.var / f"{kind}-{n}-{time.time():.0f}.log"))

    def _web_answers(self) -> bool:
        try:
            return requests.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    # -- the app

    def submit(self) -> None:
        """An app submitting about 2 jobs a second until told to stop."""
        with fluxhook_client.Client(self.base_url, self.token, timeout=(3, 30), retries=6) as app:
            while not self.stop.is_set():
                marker = self.rng.choice(["", "", "", "", "", "", "[drop]", "[dup]"])
                try:
                    job = app.submit("flux-2-pro", {"prompt": f"{marker} soak {uuid.uuid4().hex[:8]}"},
                                     idempotency_key=uuid.uuid4().hex)
                    self.jobs.append(job.id)
                except fluxhook_client.APIError as exc:
                    self.submit_errors[exc.code] += 1
                self.stop.wait(0.5)

    def submit_batches(self) -> None:
        """An app submitting a batch every ``BATCH_EVERY`` s until told to stop (its items join ``jobs`` at the end)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self.stop.wait(5.0 if not self.batches else BATCH_EVERY):
            items = [{"input": {"prompt": f"soak batch {uuid.uuid4().hex[:8]}"}} for _ in range(self.batch_items)]
            try:
                made = session.post(self.base_url + "/v1/batches", json={"model": "flux-2-pro", "items": items},
                                    headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=60)
            except requests.RequestException as exc:
                self.submit_errors[f"batch: {type(exc).__name__}"] += 1
                continue
            if made.status_code == 202:
                self.batches.append(made.json()["id"])
            else:
                self.submit_errors[f"batch: {made.status_code}"] += 1

    # -- the faults

    def chaos(self) -> None:
        """One fault every few seconds until told to stop."""
        faults = [self.kill_web_process, self.kill_worker, self.restart_redis, self.slow_bfl, self.bfl_out_of_capacity]
        if self.tmpfs:
            faults.append(self.fill_disk)
        if self.fault_names:
            faults = [fault for fault in faults if fault.__name__ in self.fault_names]
        while not self.stop.wait(self.rng.uniform(*FAULT_GAP)):
            fault = self.rng.choice(faults)
            try:
                fault()
            except Exception as exc:  # a fault that could not be done is reported, not fatal
                self.faults[f"{fault.__name__} failed: {type(exc).__name__}"] += 1

    def kill_web_process(self) -> None:
        children = subprocess.run(["pgrep", "-P", str(self.web.pid)], capture_output=True, text=True).stdout.split()
        if children:
            sig = self.rng.choice([signal.SIGKILL, signal.SIGTERM])
            os.kill(int(self.rng.choice(children)), sig)  # gunicorn's master starts another
            self.faults[f"web process {sig.name}"] += 1

    def kill_worker(self) -> None:
        n = self.rng.randrange(len(self.workers))
        sig = self.rng.choice([signal.SIGKILL, signal.SIGTERM])
        os.killpg(self.workers[n].pid, sig)
        self.faults[f"worker {sig.name}"] += 1
        try:
            self.workers[n].wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.workers[n].pid, signal.SIGKILL)
        self.stop.wait(2)
        self.workers[n] = self._start("worker", n)

    def restart_redis(self) -> None:
        kill = self.rng.random() < 0.5
        self.redis.stop(kill=kill)
        self.faults[f"redis {'SIGKILL' if kill else 'SIGTERM'} and start"] += 1
        self.stop.wait(2)
        self.redis.start()

    def fill_disk(self) -> None:
        filler = self.disk / ".soak-filler"
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * (1 << 20))
                    out.flush()
            except OSError:
                pass
        self.faults["disk full for 20 s"] += 1
        self.stop.wait(20)
        filler.unlink()

    def slow_bfl(self) -> None:
        requests.post(f"{self.sim_url}/_sim/settings", json={"callback_delay": 5.0}, timeout=10)
        self.faults["BFL calls back 5 s late for 20 s"] += 1
        self.stop.wait(20)
        requests.post(f"{self.sim_url}/_sim/settings", json={"callback_delay": 0.0}, timeout=10)

    def bfl_out_of_capacity(self) -> None:
        requests.post(f"{self.sim_url}/_sim/settings", json={"out_of_capacity": True}, timeout=10)
        self.faults["BFL answers submissions 503 for 20 s"] += 1
        self.stop.wait(20)
        requests.post(f"{self.sim_url}/_sim/settings", json={"out_of_capacity": False}, timeout=10)

    # -- the run

    def run(self) -> dict:
        threads = [threading.Thread(target=self.submit), threading.Thread(target=self.chaos)]
        if self.batch_items:
            threads.append(threading.Thread(target=self.submit_batches))
        for thread in threads:
            thread.start()
        started = time.monotonic()
        self.stop.wait(self.minutes * 60)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        for n, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.workers[n] = self._start("worker", n)
        db = redis.Redis.from_url(self.redis.url, decode_responses=True)
        items = [job for batch_id in self.batches for job in db.zrange(KEYS.batch_jobs(batch_id), 0, -1)]
        self.batch_jobs = len(items)
        self.jobs += items
        drained = self.drain()
        report = self.report(drained)
        report["minutes"] = round((time.monotonic() - started) / 60, 1)
        return report

    def drain(self) -> float:
        db = redis.Redis.from_url(self.redis.url)
        started = time.monotonic()
        while time.monotonic() - started < DRAIN_SECONDS:
            pipe = db.pipeline(transaction=False)
            for job_id in self.jobs:
                pipe.hget(KEYS.job(job_id), "status")
            if all((s or b"").decode() in st.TERMINAL for s in pipe.execute()):
                break
            time.sleep(2)  # jobs end in their own time: the fallback polls them after its grace
        return time.monotonic() - started

    def report(self, drained: float) -> dict:
        db = redis.Redis.from_url(self.redis.url, decode_responses=True)
        statuses, failures, longest, stored_twice = collections.Counter(), collections.Counter(), 0.0, []
        for job_id in self.jobs:
            record = db.hgetall(KEYS.job(job_id))
            status = record.get("status", "gone")
            statuses[status] += 1
            if status in (st.FAILED, st.EXPIRED, st.MODERATED):
                failures[json.loads(record.get("error") or "{}").get("code", "?")] += 1
            if record.get("completed_at"):
                longest = max(longest, float(record["completed_at"]) - float(record["created_at"]))
            stores = sum(1 for raw in db.lrange(KEYS.timeline(job_id), 0, -1)
                         if json.loads(raw).get("kind") == "download" and json.loads(raw).get("outcome") == st.STORED)
            if stores > 1:
                stored_twice.append(job_id)
        late, refused, errors = self._web_answers_logged()
        prompts = collections.Counter(task["prompt"] for task in requests.get(
            self.sim_url + "/_sim/tasks", timeout=30).json()["tasks"])
        sent_twice = sum(1 for n in prompts.values() if n > 1)
        return {"submitted": len(self.jobs), "of them batch items": self.batch_jobs, "batches": len(self.batches),
                "submit errors (the client gave up)": dict(self.submit_errors),
                "stored": statuses[st.STORED], "failed by code": dict(failures),
                "lost (never terminal)": sum(n for s, n in statuses.items() if s not in st.TERMINAL),
                "stored twice": len(stored_twice), "sent to BFL twice": sent_twice, "callbacks answered late (> 1 s)": late,
                "callbacks answered not 2xx": refused, "web answers 500 (any route)": errors,
                "longest time to terminal, s": round(longest, 1),
                "drain, s": round(drained, 1), "faults": dict(self.faults)}

    def _web_answers_logged(self) -> tuple[int, dict, int]:
        """From the web's request log: callbacks answered late, callbacks not 2xx by status, 500s on any route."""
        late, refused, errors = 0, collections.Counter(), 0
        for entry in logged_requests(self.var):
            errors += entry.get("status") == 500
            if str(entry.get("route", "")).startswith("/webhooks/"):
                late += entry.get("duration_ms", 0) > 1000
                if not 200 <= entry.get("status", 0) < 300:
                    refused[entry["status"]] += 1
        return late, dict(refused), errors

    def close(self) -> None:
        for process in [*self.workers, self.web, self.simulator]:
            stop_process(process)
        self.redis.stop()
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.disk)], check=False)


def main() -> int:
    require_tools("soak", "pgrep")  # its faults find gunicorn's workers with it
    # A plain `kill` must stop the processes too (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    faults = tuple(name for name in os.environ.get("SOAK_FAULTS", "").split(",") if name)
    soak = Soak(float(os.environ.get("SOAK_MINUTES", "10")), int(os.environ.get("SOAK_SEED", "1")),
                int(os.environ.get("SOAK_BATCH_ITEMS", "100")), faults)
    print(f"soak: {soak.minutes:g} min, logs in {soak.var}", flush=True)
    try:
        report = soak.run()
    finally:
        soak.close()
    width = max(len(name) for name in report)
    for name, value in report.items():
        print(f"{name.ljust(width)}  {value}")
    return 1 if report["lost (never terminal)"] or report["stored twice"] or report["sent to BFL twice"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
