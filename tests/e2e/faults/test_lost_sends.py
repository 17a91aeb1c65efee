"""A web process killed while its request was sending a job to BFL (docs/callbacks.md: a task is never sent to BFL twice for
one job; docs/operating.md: an interrupted job completes once the processes run again). The Procfile's processes on Redis and the
simulator, which takes the task 5 s after the send, as BFL keeps a task whose client went away. Once the send's
lease is over, the worker's sweep takes the job for one BFL may have: it is never sent again, and BFL's callback to
the job's own URL names the task it then follows to ``stored``. Another app's job, sent meanwhile, goes through at
once and is its own task."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import redis
import requests

from conftest import API
from devtools.processes import wait_until
from fluxhook.core.holds import SUBMIT_LEASE
from fluxhook.store.keys import KEYS
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other module on it runs its web apps in-process, one at a time)
SENT_AFTER = 5.0


@pytest.fixture(scope="module")
def lost_stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("lost-sends")),
                     DB) as running:
        yield running


def _tasks(sim, prompt: str) -> list[dict]:
    return [t for t in sim.control("GET", "/tasks")["tasks"] if t["prompt"] == prompt]


def _connected_to_bfl(stack, sim) -> bool:
    """Whether a web worker holds a TCP connection to the simulator (/proc: the web talks to BFL only to send)."""
    port = int(sim.url.rsplit(":", 1)[1])
    inodes = set()
    for pid in stack.web_workers():
        try:
            inodes |= {str(fd.readlink())[8:-1] for fd in Path(f"/proc/{pid}/fd").iterdir()
                       if str(fd.readlink()).startswith("socket:[")}
        except OSError:
            continue
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(int(row.split()[2].rsplit(":", 1)[1], 16) == port and row.split()[3] == "01"
               and row.split()[9] in inodes for row in rows)


def _kill_web(stack) -> None:
    """SIGKILL to the web's whole process group (gunicorn and its workers), as when its container dies."""
    web = stack.processes.pop("web")
    os.killpg(web.pid, signal.SIGKILL)
    web.wait(timeout=30)


def test_a_job_whose_web_process_died_mid_send_is_sent_once_and_stored(lost_stack, sim):
    admin = API(lost_stack.base_url)
    _, app_a = make_key(admin)
    _, app_b = make_key(admin)
    prompt = "[pending] sent as its web process died"
    sim.settings(submit_delay=SENT_AFTER)
    db = redis.Redis.from_url(lost_stack.env["REDIS_URL"])
    received = sim.stats()["received"]
    cut_off = threading.Thread(target=lambda: _post_until_cut_off(app_a, prompt), daemon=True)
    cut_off.start()
    # Sending: its submit lock is taken and BFL has not answered.
    lock = wait_until(lambda: next(db.scan_iter(KEYS.submit_lock("*")), None), timeout=10,
                      message="the request to begin sending")
    job_id = lock.decode().removeprefix(KEYS.submit_lock(""))
    # Its request arrived whole at BFL, which takes SENT_AFTER s to answer (a connection alone is not enough: a loaded
    # host can stall the web worker between its connect and its send, and a request cut off unsent makes no task).
    wait_until(lambda: sim.stats()["received"] > received and _connected_to_bfl(lost_stack, sim), timeout=10,
               message="the send to reach BFL")
    _kill_web(lost_stack)
    lost_stack.start("web")
    cut_off.join(timeout=30)
    sim.settings(submit_delay=1.0)

    # BFL took the task all the same.
    (task,) = wait_until(lambda: _tasks(sim, prompt), timeout=20, message="BFL to have the task")
    assert admin.job(job_id)["status"] == "queued"
    # Another app's job goes through meanwhile.
    other = app_b.submit("[pending] the other app's")
    assert other["status"] == "submitted" and other["bfl_id"]

    # Past the send's lease, the sweep takes the job for one BFL may have: never sent again.
    waiting = app_a.wait_for(job_id, "submitted", timeout=SUBMIT_LEASE + 30)
    assert waiting["bfl_id"] is None
    assert len(_tasks(sim, prompt)) == 1
    # BFL's callback names the task: the job follows it to the end.
    sim.complete(task["id"])
    stored = app_a.wait_for(job_id, timeout=30)
    assert (stored["status"], stored["bfl_id"]) == ("stored", task["id"])
    assert requests.get(stored["image"]["url"], timeout=10).content == sim.image_bytes(task["id"])
    assert len(_tasks(sim, prompt)) == 1 and len(_tasks(sim, "[pending] the other app's")) == 1
    assert app_b.job(other["id"])["bfl_id"] == _tasks(sim, "[pending] the other app's")[0]["id"]
    assert app_b.get(f"/v1/jobs/{job_id}").status_code == 404  # an app sees its own jobs only


def _post_until_cut_off(app: API, prompt: str) -> None:
    try:
        app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}}, timeout=30)
    except requests.ConnectionError:
        pass  # the web process died under it

