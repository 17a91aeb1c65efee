"""The fault modules' stack (a Redis of its own, AOF on, and the Procfile's processes, which a test may kill and
restart) and what they check after a fault: every job stored once, the downloads a stopping worker handed back.
Shared by test_faults.py, test_killed_mid_download.py, test_killed_mid_poll.py, test_graceful_stop.py and
test_worker_pool.py (one file each, so that pytest-xdist runs them side by side: each test has a stack of its own)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import redis
import requests

from conftest import API, service_env
from devtools.processes import RedisServer, free_port, wait_until
from devtools.stack import Stack
from fluxhook.core.config import Config
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.enqueueing import task_name
from fluxhook.store.timeline import TimelineStore

HANDED_BACK = "task in hand handed back to the queue: the worker is stopping"
# The downloads one worker process runs at once (WORKER_DOWNLOAD_CONCURRENCY's default).
DOWNLOAD_LANES = Config.worker_download_concurrency


class FaultStack(Stack):
    """A Stack on a Redis of its own, whose processes a test may kill and restart."""

    def kill(self, kind: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the process group of ``kind``, as a PaaS does; with SIGKILL, to every
        descendant too (RQ's work horse runs in a process group of its own), as when a container dies."""
        process = self.processes.pop(kind)
        everyone = descendants(process.pid) if sig == signal.SIGKILL else []
        os.killpg(process.pid, sig)
        for pid in everyone:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return process.wait(timeout=60)

    def db(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"])


def fault_stack(simulator, spies, tmp_path, **overrides):
    """A started FaultStack (``overrides``: more of its environment), stopped with its Redis after the test."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(directory=str(tmp_path / "redis")).start()
    env = dict(os.environ)
    env.update(service_env(server, simulator, spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}", **overrides))
    running = FaultStack(env=env, var_dir=Path(tmp_path))
    running.redis_server = server  # type: ignore[attr-defined]
    running.start()
    yield running
    running.stop()
    running.redis_server.stop()  # the test may have replaced it with a restarted one


def download_outcomes(stack: FaultStack, job_id: str) -> list[str]:
    """How each of the job's download attempts ended, from its timeline."""
    return [e.get("outcome", "") for e in timeline.recent(TimelineStore(stack.db()), job_id) if e["kind"] == "download"]


def stored_exactly_once(api: API, sim, jobs: list[dict], stack: FaultStack) -> None:
    """Every job stored, byte-identical to BFL's image, one image (and its thumbnail) per job and nothing else."""
    for job in jobs:
        done = api.wait_for(job["id"], timeout=30)
        assert done["status"] == "stored", done
        served = requests.get(done["image"]["url"], timeout=10)
        assert served.content == sim.image_bytes(job["bfl_id"])
    images = stack.var_dir / "images"
    thumbs = [images / f"{j['id']}-thumb.webp" for j in jobs]
    # Each thumbnail is made by its download task just after its job is stored.
    wait_until(lambda: all(t.exists() for t in thumbs), timeout=30, message="every thumbnail")
    # A worker stopped in the middle of a write leaves its hidden partial file to retention's sweep (an hour on).
    files = sorted(p.name for p in images.iterdir() if not p.name.startswith(".partial-"))
    assert files == sorted([f"{j['id']}.png" for j in jobs] + [t.name for t in thumbs])


def children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def handed_back(log: str) -> list[dict]:
    """The worker's line for each task it handed back to its queue as it stopped."""
    return [json.loads(line) for line in log.splitlines() if HANDED_BACK in line]


def handed_back_downloads(log: str) -> list[str]:
    """The download tasks (``download-<job id>``) handed back, in order of their names."""
    return sorted(task_name(line["task"]) for line in handed_back(log) if line["task"].startswith("download-"))
