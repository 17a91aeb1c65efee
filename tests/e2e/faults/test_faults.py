"""Faults fluxhook must survive: killed and stopped processes, a Redis restart, a
misbehaving BFL. Each test runs its own Redis (AOF on) and the Procfile's processes."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from PIL import Image
from rq import Worker

from conftest import API, ready_payload, service_env
from devtools.processes import RedisServer, free_port, wait_until
from devtools.stack import SIMULATOR_KEY, Stack
from fluxhook.core.config import Config
from fluxhook.core.outcomes import DownloadOutcome
from fluxhook.core.sealing import Sealer
from fluxhook.lifecycle.steps import schedule, timeline
from fluxhook.lifecycle.steps.enqueueing import task_name
from fluxhook.store.keys import KEYS
from fluxhook.store.timeline import TimelineStore
from worker.lanes import HAND_BACK_GRACE
from worker.run import IMMINENT_SHUTDOWN_DELAY

HANDED_BACK = "task in hand handed back to the queue: the worker is stopping"
# The downloads one worker process runs at once (WORKER_DOWNLOAD_CONCURRENCY's default).
DOWNLOAD_LANES = Config.worker_download_concurrency


class FaultStack(Stack):
    """A Stack on a Redis of its own, whose processes a test may kill and restart."""

    def kill(self, kind: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the process group of ``kind``, as a PaaS does; with SIGKILL, to every
        descendant too (RQ's work horse runs in a process group of its own), as when a container dies."""
        process = self.processes.pop(kind)
        everyone = _descendants(process.pid) if sig == signal.SIGKILL else []
        os.killpg(process.pid, sig)
        for pid in everyone:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return process.wait(timeout=60)

    def db(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"])


def _download_outcomes(stack: FaultStack, job_id: str) -> list[str]:
    """How each of the job's download attempts ended, from its timeline."""
    return [e.get("outcome", "") for e in timeline.recent(TimelineStore(stack.db()), job_id) if e["kind"] == "download"]


def _fault_stack(simulator, spies, tmp_path, **overrides):
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


@pytest.fixture()
def faults(simulator, _spies, tmp_path):
    yield from _fault_stack(simulator, _spies, tmp_path)


@pytest.fixture()
def pooled(simulator, _spies, tmp_path):
    """A FaultStack whose ``python -m worker`` runs two member worker processes (WORKER_PROCESSES=2)."""
    yield from _fault_stack(simulator, _spies, tmp_path, WORKER_PROCESSES="2")


def _stored_exactly_once(api: API, sim, jobs: list[dict], stack: FaultStack) -> None:
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
    files = sorted(p.name for p in images.iterdir())
    assert files == sorted([f"{j['id']}.png" for j in jobs] + [t.name for t in thumbs])


# -- 1. a worker killed outright --------------------------------------------------------------

def test_worker_killed_mid_download_recovers_every_job(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=2.0)
    jobs = [api.submit(f"killed mid-download {n}") for n in range(4)]
    wait_until(lambda: any(api.job(j["id"])["attempts"]["downloads"] for j in jobs), timeout=20,
               message="a download to start")
    faults.kill("worker", signal.SIGKILL)  # the worker, its work horse and its schedulers
    sim.settings(delivery_delay=0)
    assert any(api.job(j["id"])["status"] == "ready" for j in jobs)
    started = time.monotonic()
    faults.start("worker")
    # RQ declares the killed task abandoned 30 to 45 s after its last heartbeat and retries it.
    for job in jobs:
        assert api.wait_for(job["id"], timeout=150)["status"] == "stored"
    assert time.monotonic() - started < 120  # within two minutes of a worker running again
    # The download that was cut off was made again.
    assert any(api.job(j["id"])["attempts"]["downloads"] >= 2 for j in jobs)
    _stored_exactly_once(api, sim, jobs, faults)


@pytest.fixture()
def faults_polling_via_spy(simulator, _spies, tmp_path):
    """A FaultStack that may poll BFL at the spy host too (its polling URLs are allowlisted)."""
    sim_host = simulator.url.removeprefix("http://")
    yield from _fault_stack(simulator, _spies, tmp_path, API_HOST_ALLOWLIST=f"{sim_host},127.0.0.1:{_spies[0].port}")


def test_worker_killed_mid_poll_polls_again_within_two_minutes(faults_polling_via_spy, _spies, sim):
    stack, spy = faults_polling_via_spy, _spies[0]
    api = API(stack.base_url)
    task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[pending] killed mid-poll"},
                         headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
    polled, released = threading.Event(), threading.Event()

    def poll_answer():
        # The first poll hangs until its worker is dead; every poll answers what BFL says.
        polled.set()
        released.wait(30)
        answer = sim.http.get(task["polling_url"], headers={"x-key": SIMULATOR_KEY}, timeout=10)
        return answer.status_code, {"Content-Type": "application/json"}, answer.content

    path = f"/killed-mid-poll?id={task['id']}"
    spy.route(path, body=poll_answer)
    job = api.track(task["id"], polling_url=spy.url + path).json()  # no callback will come: polled after 2 s
    assert polled.wait(30), "the fallback poll to start"
    stack.kill("worker", signal.SIGKILL)
    released.set()
    sim.complete(task["id"])
    started = time.monotonic()
    stack.start("worker")

    done = api.wait_for(job["id"], timeout=150)
    assert done["status"] == "stored" and done["source"] == "poll", done
    assert time.monotonic() - started < 120  # within two minutes of a worker running again
    assert spy.hits.count(path) >= 2


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


# -- 2. a graceful stop, as on every PaaS deploy -------------------------------------------------

def test_sigterm_finishes_or_hands_back_the_task_in_hand_within_the_grace_period(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=3.0)
    jobs = [api.submit(f"deploy {n}") for n in range(3)]
    wait_until(lambda: any(api.job(j["id"])["attempts"]["downloads"] for j in jobs), timeout=20,
               message="a download to start")
    started = time.monotonic()
    faults.kill("worker", signal.SIGTERM)
    assert time.monotonic() - started < 30  # Heroku's grace before SIGKILL
    sim.settings(delivery_delay=0)
    faults.start("worker")
    _stored_exactly_once(api, sim, jobs, faults)


def test_sigterm_hands_back_a_task_too_long_for_the_grace_period(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=25.0)
    job = api.submit("a very slow delivery host")
    wait_until(lambda: api.job(job["id"])["attempts"]["downloads"] >= 1, timeout=20, message="the download")
    started = time.monotonic()
    faults.kill("worker", signal.SIGTERM)
    assert time.monotonic() - started < 20  # handed back after 10 s, not waited for
    # Waiting on the host's answer, it could not stop by itself: its lane gave it back, and did not wait for its read.
    assert [(task_name(line["task"]), line["stuck"]) for line in _handed_back((faults.var_dir / "worker.log").read_text())] == [
        (f"download-{job['id']}", True)]
    sim.settings(delivery_delay=0)
    faults.start("worker")
    _stored_exactly_once(api, sim, [job], faults)


def _handed_back(log: str) -> list[dict]:
    """The worker's line for each task it handed back to its queue as it stopped."""
    return [json.loads(line) for line in log.splitlines() if HANDED_BACK in line]


def _handed_back_downloads(log: str) -> list[str]:
    """The download tasks (``download-<job id>``) handed back, in order of their names."""
    return sorted(task_name(line["task"]) for line in _handed_back(log) if line["task"].startswith("download-"))


@pytest.fixture()
def faults_large(simulator, _spies, tmp_path):
    """A FaultStack that takes images of up to 64 MiB: downloads that last longer than a stop's grace."""
    yield from _fault_stack(simulator, _spies, tmp_path, MAX_IMAGE_BYTES=str(64 * 1024 * 1024))


def _noise_png(side: int) -> bytes:
    """A PNG of ``side``² random pixels, stored uncompressed: 3 bytes a pixel, whatever the pixels."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def test_sigterm_stops_downloads_mid_body_at_their_next_piece_and_the_jobs_are_stored_after_the_restart(
        faults_large, spy):
    api = API(faults_large.base_url)
    body = _noise_png(3600)  # 39 MB: 18 s at the host's pace, past the 10 s grace
    piece, fast = 256 * 1024, threading.Event()

    class Paced(list):
        """The delivery host's body at 2 MiB/s (a quarter MiB every 1/8 s) until ``fast`` is set."""

        def __iter__(self):
            for start in range(0, len(body), piece):
                if not fast.is_set():
                    fast.wait(1 / 8)  # the host's pace, not a test waiting for something
                yield body[start:start + piece]

    url = spy.route("/paced.png", body=Paced(), headers={"Content-Type": "image/png"})
    jobs = [api.submit(f"[pending] mid-body {n}") for n in range(DOWNLOAD_LANES)]
    for job in jobs:
        assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    wait_until(lambda: len(spy.hits) >= DOWNLOAD_LANES, timeout=20, message="a download in every lane")
    started = time.monotonic()
    assert faults_large.kill("worker", signal.SIGTERM) == 0
    took = time.monotonic() - started

    log = (faults_large.var_dir / "worker.log").read_text()
    assert _handed_back_downloads(log) == sorted(f"download-{j['id']}" for j in jobs)  # each once
    # Each stopped at its next piece, by itself: none was still in a read for its lane to give back.
    assert not [line for line in _handed_back(log) if line["stuck"]]
    assert took < IMMINENT_SHUTDOWN_DELAY + HAND_BACK_GRACE, took
    assert "exception raised while executing" not in log  # a stop, not a failure
    assert {api.job(j["id"])["status"] for j in jobs} == {"ready"}

    fast.set()
    faults_large.start("worker")
    for job in jobs:
        done = api.wait_for(job["id"], timeout=60)
        # Downloaded twice, once cut off: the stop spent no retry, and nothing else went wrong.
        assert (done["status"], done["attempts"]["downloads"]) == ("stored", 2), done
        assert requests.get(done["image"]["url"], timeout=30).content == body


# -- 2b. a pool of workers under one command (WORKER_PROCESSES) ---------------------------------

def _members(stack: FaultStack) -> set[int]:
    return _children(stack.processes["worker"].pid)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _busy_workers(stack: FaultStack) -> int:
    return sum(w.get_state() == "busy" for w in Worker.all(connection=stack.db()))


def test_a_pool_runs_its_members_side_by_side(pooled, sim):
    api = API(pooled.base_url)
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    wait_until(lambda: {w.pid for w in Worker.all(connection=pooled.db())} == _members(pooled), timeout=30,
               message="both members registered with RQ")
    sim.settings(delivery_delay=1.5)
    jobs = [api.submit(f"pooled {n}") for n in range(2)]
    # One download each, at the same time: two tasks in hand under one worker command.
    wait_until(lambda: _busy_workers(pooled) == 2, timeout=20, message="both members busy at once")
    sim.settings(delivery_delay=0)
    _stored_exactly_once(api, sim, jobs, pooled)


def _busy_members(stack: FaultStack) -> set[int]:
    """The member processes with a task in hand: each member's lanes are RQ workers named by its pid."""
    return {w.pid for w in Worker.all(connection=stack.db()) if w.get_state() == "busy"}


def test_sigterm_to_a_pool_stops_every_member_warmly_and_loses_nothing(pooled, sim):
    api = API(pooled.base_url)
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    members = _members(pooled)
    # One download more than a member has lanes, so no member can hold them all; each longer than the stop's
    # grace (run.IMMINENT_SHUTDOWN_DELAY), so every one in hand is cut off and must be handed back.
    sim.settings(delivery_delay=60.0)
    jobs = [api.submit(f"pool deploy {n}") for n in range(DOWNLOAD_LANES + 1)]
    # Started, they cannot end before the stop: each is in hand, and both members hold some.
    wait_until(lambda: _busy_members(pooled) == members and all(api.job(j["id"])["attempts"]["downloads"] for j in jobs),
               timeout=30, message="every download started, both members at one")
    started = time.monotonic()
    # To the whole process group, as Heroku does: members get SIGTERM too, and must not take it as a second stop.
    assert pooled.kill("worker", signal.SIGTERM) == 0
    assert time.monotonic() - started < 30
    assert not any(_running(pid) for pid in members)
    log = (pooled.var_dir / "worker.log").read_text()
    assert "cold shut down" not in log
    assert "did not stop in time" not in log  # warmly: no member outlived its supervisor's wait, to be killed
    assert _handed_back_downloads(log) == sorted(f"download-{j['id']}" for j in jobs)  # each once
    sim.settings(delivery_delay=0)
    pooled.start("worker")
    _stored_exactly_once(api, sim, jobs, pooled)


def test_members_stop_by_themselves_when_their_supervisor_is_killed(pooled):
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    members = _members(pooled)
    supervisor = pooled.processes.pop("worker")
    os.kill(supervisor.pid, signal.SIGKILL)  # the supervisor alone: its members are left behind
    supervisor.wait(timeout=10)
    wait_until(lambda: not any(_running(pid) for pid in members), timeout=30, message="the members to stop")


def test_a_member_that_dies_is_replaced(pooled, sim):
    api = API(pooled.base_url)
    wait_until(lambda: len(_members(pooled)) == 2, timeout=30, message="two member workers")
    killed = min(_members(pooled))
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: len(_members(pooled)) == 2 and killed not in _members(pooled), timeout=30,
               message="a new member in place of the killed one")
    job = api.submit("after a member died")
    assert api.wait_for(job["id"], timeout=30)["status"] == "stored"


# -- 3. Redis restarts -------------------------------------------------------------------------

def test_redis_restart_loses_nothing_and_refuses_callbacks_while_down(faults, sim):
    api = API(faults.base_url)
    before = [api.submit(f"acknowledged {n}") for n in range(20)]
    pending = api.submit("[pending] completes while Redis is down")
    for job in before:
        api.wait_for(job["id"])
    server: RedisServer = faults.redis_server  # type: ignore[attr-defined]
    server.stop(kill=True)  # no clean shutdown: only what the AOF holds survives

    sim.complete(pending["bfl_id"])
    sample = sim.result(pending["bfl_id"])["result"]["sample"]
    refused = api.callback(pending["id"], ready_payload(pending["bfl_id"], sample))
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert requests.get(faults.base_url + "/readyz", timeout=10).status_code == 503

    # Same port and directory; the fixture stops this one.
    faults.redis_server = RedisServer(port=server.port, directory=server.directory).start()
    wait_until(lambda: requests.get(faults.base_url + "/readyz", timeout=10).status_code == 200, timeout=90,
               message="web and worker to reconnect")
    # BFL retries the refused callback: now it is taken, and the worker (reconnected) stores it.
    assert api.callback(pending["id"], ready_payload(pending["bfl_id"], sample)).status_code == 200
    assert api.wait_for(pending["id"], timeout=30)["status"] == "stored"
    for job in before:
        assert api.job(job["id"])["status"] == "stored"
    after = api.submit("after the restart")
    assert api.wait_for(after["id"])["status"] == "stored"


# -- 4. BFL misbehaving --------------------------------------------------------------------------

def test_truncated_then_whole_body_is_retried_and_stored(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_truncate=True)
    job = api.submit("truncated body")
    # The first attempt over, not begun (its count is taken as it starts): a truncated body turned down, and only
    # then whole bodies again.
    wait_until(lambda: DownloadOutcome.RETRY in _download_outcomes(faults, job["id"]), timeout=20, message="a truncated download")
    assert api.job(job["id"])["status"] == "ready"
    sim.settings(delivery_truncate=False)
    done = api.wait_for(job["id"], timeout=30)
    assert done["status"] == "stored" and done["attempts"]["downloads"] >= 2
    _stored_exactly_once(api, sim, [job], faults)


def test_a_slow_delivery_host_still_ends_stored(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=4.0)
    job = api.submit("slow delivery")
    done = api.wait_for(job["id"], timeout=30)
    assert (done["status"], done["attempts"]["downloads"]) == ("stored", 1)


def test_ready_before_pending_and_duplicates_out_of_order_end_stored_once(faults, sim):
    api = API(faults.base_url)
    job = api.submit("[pending] out of order")
    sim.complete(job["bfl_id"])
    sample = sim.result(job["bfl_id"])["result"]["sample"]
    for payload in (ready_payload(job["bfl_id"], sample), {"id": job["bfl_id"], "status": "Pending"},
                    ready_payload(job["bfl_id"], sample), {"id": job["bfl_id"], "status": "Error"}):
        assert api.callback(job["id"], payload).status_code == 200
    done = api.wait_for(job["id"])
    assert (done["status"], done["bfl_status"], done["attempts"]["downloads"]) == ("stored", "Ready", 1)
    _stored_exactly_once(api, sim, [job], faults)


# -- 5. the web process killed between recording a callback and queueing the download --------------

@pytest.mark.parametrize("lock", ["none", "stale"])
def test_a_ready_job_without_a_queued_download_is_repaired_by_the_sweep(faults, sim, lock):
    api = API(faults.base_url)
    job = api.submit("[pending] the web process dies")
    sim.complete(job["bfl_id"])
    sample = sim.result(job["bfl_id"])["result"]["sample"]
    db = faults.db()
    # What a web process leaves if it dies after recording Ready and before the download is queued:
    # the job ready and due for its check a minute later (here: now), no RQ task, maybe a lock; BFL's
    # delivery link kept sealed, as every process keeps it.
    sealed = Sealer(Config.from_env(faults.env).secret_keys).seal_text(sample)
    db.hset(KEYS.job(job['id']), mapping={"status": "ready", "bfl_status": "Ready", "source": "webhook",
                                            "result_url": sealed})
    db.zrem(KEYS.status("submitted"), job["id"])
    db.zadd(KEYS.status("ready"), {job["id"]: 0})
    db.zadd(KEYS.due, {job["id"]: time.time()})
    if lock == "stale":
        db.set(KEYS.download_lock(job['id']), "0a0a0a0a", ex=900)  # names a task never queued
    done = api.wait_for(job["id"], timeout=30)
    assert (done["status"], done["attempts"]["polls"]) == ("stored", 0)
    _stored_exactly_once(api, sim, [job], faults)


def test_ready_jobs_are_rechecked_soon_after(faults, sim):
    api = API(faults.base_url)
    job = api.submit("[pending] recheck scheduled")
    sim.settings(delivery_delay=3.0)
    sim.complete(job["bfl_id"])
    wait_until(lambda: api.job(job["id"])["status"] == "ready", timeout=10, message="ready")
    due = faults.db().zscore(KEYS.due, job["id"])
    assert due is not None and 0 < due - time.time() <= schedule.READY_FIRST_CHECK
    sim.settings(delivery_delay=0)
    api.wait_for(job["id"])
    assert faults.db().zscore(KEYS.due, job["id"]) is None
