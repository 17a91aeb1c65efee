"""A stack for the Redis-cost bench: Redis, this tree's simulator, and the web and worker of any tree.

The web and the worker run from ``tree`` (their working directory and ``PYTHONPATH``), so an older commit's
checkout runs its own code; Redis and the simulator are this tree's, so both trees meet the same BFL. Loopback
only; everything lives in a temporary directory removed by ``stop()``.

``give_redis_a_core`` places every Redis the bench starts on a CPU of its own and the bench, with all it starts,
on the others: a deployment's Redis runs on a host or a core of its own, and a Redis sharing its core with the web,
the worker, the simulator and the clients spends more CPU on the same commands (its caches are theirs too).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests
from rq import Worker

from devtools.processes import RedisServer, free_port, python, start_process, stop_process, wait_until
from devtools.stack import accounts_env, procfile_commands, start_simulator_accounts

from .common import bench_env, thread_session

NAMES = ("eu", "us")
# Where every Redis the bench starts runs (give_redis_a_core); None: on every CPU, beside the rest.
_REDIS_CPUS: set[int] | None = None
# BFL's slots per account (docs/architecture.md's figures): fluxhook's bound, BFL's own set far above it.
SLOTS = 24
CLIENTS = 32


def give_redis_a_core() -> str:
    """Redis on this process's last CPU, alone; this process, and so all it starts from now on, on the others.
    Returns where each runs, for the bench's heading; on one CPU, nothing moves and it says so."""
    global _REDIS_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return f"Redis shares the one CPU ({cpus[0]}) with the stack"
    _REDIS_CPUS = {cpus[-1]}
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"Redis alone on CPU {cpus[-1]}, the bench and the stack on CPU {','.join(map(str, cpus[:-1]))}"


def start_redis_server(server: RedisServer) -> RedisServer:
    """``server`` started, every thread of it on Redis's CPU when it has one (its background threads write the AOF;
    what it forks later inherits the CPU); stopped again if it cannot be placed."""
    server.start()
    if _REDIS_CPUS is not None and server.process is not None:
        try:
            for thread in os.listdir(f"/proc/{server.process.pid}/task"):
                os.sched_setaffinity(int(thread), _REDIS_CPUS)
        except OSError:
            server.stop()
            raise
    return server


class TreeStack:
    """Redis, a simulator serving ``accounts`` accounts, and one web and one worker process of ``tree``."""

    def __init__(self, tree: Path, accounts: int, submit_delay: float, task_delay: float):
        self.tree = tree
        self.names = NAMES[:accounts]
        self.submit_delay, self.task_delay = submit_delay, task_delay
        self.var_dir = Path(tempfile.mkdtemp(prefix="fluxhook-bench-redis-"))
        self.redis_server = RedisServer(directory=str(self._dir("redis")))
        self.processes: dict[str, subprocess.Popen] = {}
        self.accounts: dict = {}
        self.env: dict[str, str] = {}

    def _dir(self, name: str) -> Path:
        path = self.var_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_redis(self) -> "TreeStack":
        start_redis_server(self.redis_server)
        return self

    def start(self) -> "TreeStack":
        """Redis (unless started), the simulator, the web, then the worker; returns once RQ lists the worker."""
        if self.redis_server.process is None:
            self.start_redis()
        sim, self.accounts = start_simulator_accounts(list(self.names), str(self.var_dir / "simulator.log"),
                                                      "--task-delay", str(self.task_delay))
        self.processes["simulator"] = sim
        for account in self.accounts.values():
            # BFL's own limit above fluxhook's slots (no 429), its answer to a submission after submit_delay,
            # 1 MP JPEGs as generations look.
            response = requests.post(f"{account.base}/_sim/settings", timeout=10, json={
                "max_active": 10_000, "submit_delay": self.submit_delay, "scene_images": True,
                "image_format": "jpeg"})
            response.raise_for_status()
        port = free_port()
        env = bench_env(port, "WARNING", **accounts_env(self.accounts.values()))
        for account in self.accounts.values():
            env[f"{account.env_prefix}MAX_ACTIVE"] = str(SLOTS)
        env.update(REDIS_URL=self.redis_server.url, SECRET_KEY=secrets.token_urlsafe(32),
                   API_TOKENS=secrets.token_urlsafe(24), STORAGE_URL=f"file://{self._dir('images')}",
                   PYTHONUNBUFFERED="1", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", PYTHONPATH=str(self.tree),
                   PATH=os.pathsep.join([str(Path(python()).parent), "/usr/bin:/bin"]))
        self.env = env
        commands = procfile_commands(self.tree / "Procfile")
        db = self.redis()
        for kind in ("web", "worker"):
            self.processes[kind] = start_process(["sh", "-c", "exec " + commands[kind]], env, cwd=self.tree,
                                                 log_path=str(self.var_dir / f"{kind}.log"))
        wait_until(self._web_answers, timeout=60, message="the web to answer /healthz")
        wait_until(lambda: Worker.count(connection=db) >= 1, timeout=60, interval=0.1,
                   message="the worker to register")
        return self

    def _web_answers(self) -> bool:
        for kind in ("web", "worker"):
            if self.processes[kind].poll() is not None:
                raise RuntimeError(f"the {kind} of {self.tree} exited; see {self.var_dir / (kind + '.log')}")
        try:
            return requests.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        for kind in ("worker", "web", "simulator"):
            if kind in self.processes:
                stop_process(self.processes.pop(kind))
        self.redis_server.stop()
        shutil.rmtree(self.var_dir, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return self.env["PUBLIC_BASE_URL"]

    @property
    def images_dir(self) -> Path:
        return Path(self.env["STORAGE_URL"].removeprefix("file://"))

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True)

    def pids(self) -> dict[int, str]:
        """The process kind of the web's and the worker's processes (and their children), by pid."""
        from .common import descendants

        found = {}
        for kind in ("web", "worker"):
            process = self.processes.get(kind)
            if process is not None:
                for pid in (process.pid, *descendants(process.pid)):
                    found[pid] = kind
        return found


def post_jobs(stack: TreeStack, count: int, threads: int = CLIENTS) -> tuple[list[str], list[str]]:
    """``count`` jobs through ``POST /v1/jobs`` as clients send them (any 2xx with an ``id`` is a job, so an older
    release's answers do too); the ids, and what the refused POSTs answered."""
    ids: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    local = threading.local()
    url = stack.base_url + "/v1/jobs"
    token = stack.env["API_TOKENS"]

    def post(n: int) -> None:
        try:
            response = thread_session(local, token).post(
                url, timeout=60, json={"model": "flux-2-pro", "input": {"prompt": f"bench redis {n}"}})
            job_id = response.json().get("id") if response.ok else None
            text = f"{response.status_code} {response.text[:120]}"
        except (requests.RequestException, ValueError) as exc:
            job_id, text = None, repr(exc)
        with lock:
            (ids.append(job_id) if job_id else refused.append(text))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, range(count)))
    return ids, refused


def wait_thumbnails(stack: TreeStack, ids: list[str], timeout: float, tick=None) -> float:
    """Wait until every job's thumbnail file is in the images directory (``{id}-thumb.webp``, the same name in
    every release): no Redis command, so the wait costs the measurement nothing. ``tick()`` is called about
    every 2 s meanwhile. The seconds it took."""
    started = time.monotonic()
    pending = list(ids)
    last_tick = started
    while pending:
        pending = [j for j in pending if not (stack.images_dir / f"{j}-thumb.webp").exists()]
        if not pending:
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"after {timeout:.0f} s, {len(pending)} of {len(ids)} jobs have no thumbnail")
        for kind in ("web", "worker"):
            if stack.processes[kind].poll() is not None:
                raise RuntimeError(f"the {kind} exited; see {stack.var_dir / (kind + '.log')}")
        if tick and time.monotonic() - last_tick >= 2.0:
            tick()
            last_tick = time.monotonic()
        time.sleep(0.2)
    return time.monotonic() - started
