"""The worker's work is fair too: with one worker whose lanes are all busy, key A's results arriving
at once and key B's one just after, B's result waits behind the few tasks already in RQ, not after A's
backlog. Through the Procfile's processes on a stack of its own (one worker), the simulator and the spy
host. The rule itself, on Redis: tests/unit/store/test_work_lines.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
import requests

from conftest import API, ready_payload
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.core.config import Config
from fluxhook.lifecycle.steps.enqueueing import AHEAD
from fluxhook.store.keys import KEYS
from helpers import png_bytes, stack_on_db
from key_helpers import make_key

# The downloads one worker process runs at once (WORKER_DOWNLOAD_CONCURRENCY's default).
DOWNLOAD_LANES = Config.worker_download_concurrency


DB = 6  # a database of this module's own stack
BACKLOG = 60


@pytest.fixture(scope="module")
def one_worker(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("fair-work-stack")), DB,
                     WORKER_PROCESSES="1") as running:
        yield running


def _tracked(sim, app: API, name: str) -> dict:
    """A job of ``app``'s key tracking a task pending at the simulator (no slot, no submission)."""
    task = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": f"[pending] {name}"},
                         headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
    response = app.track(task["id"], polling_url=task["polling_url"])
    assert response.status_code == 201, response.text
    return response.json()


def _ready(app: API, job: dict, url: str) -> None:
    answer = app.callback(job["id"], ready_payload(job["bfl_id"], url))
    assert answer.status_code == 200, answer.text


def _stored_at(stack, app: API, job_id: str) -> float:
    """When the job turned stored, to the microsecond (its JSON says it to the second)."""
    assert app.job(job_id)["status"] == "stored"
    return float(redis.Redis.from_url(stack.env["REDIS_URL"]).hget(KEYS.job(job_id), "completed_at"))


def test_one_key_s_backlog_holds_another_key_s_result_back_by_the_few_tasks_in_rq_at_most(one_worker, sim, spy):
    admin = API(one_worker.base_url)
    _, app_a = make_key(admin)
    _, app_b = make_key(admin)
    a_jobs = [_tracked(sim, app_a, f"a{n}") for n in range(BACKLOG)]
    b_job = _tracked(sim, app_b, "b")

    # Every lane of the one worker busy with one of A's downloads while A's other results and then B's arrive.
    release = threading.Event()
    held, rest = a_jobs[:DOWNLOAD_LANES], a_jobs[DOWNLOAD_LANES:]
    for n, job in enumerate(held):
        spy.route(f"/a-held-{n}.png", body=lambda: (release.wait(30), (200, {}, png_bytes()))[1])
        _ready(app_a, job, spy.url + f"/a-held-{n}.png")
    wait_until(lambda: sum(hit.startswith("/a-held-") for hit in spy.hits) == DOWNLOAD_LANES, timeout=10,
               message="every lane busy with one of A's downloads")
    for n, job in enumerate(rest):
        _ready(app_a, job, spy.route(f"/a-{n}.png", body=png_bytes((n, 0, 0))))
    _ready(app_b, b_job, spy.route("/b.png", body=png_bytes((0, 0, 200))))
    release.set()

    for job in [*a_jobs, b_job]:
        admin.wait_for(job["id"], timeout=60)
    b_stored = _stored_at(one_worker, admin, b_job["id"])
    a_stored = sorted(_stored_at(one_worker, admin, job["id"]) for job in rest)
    # B's goes after at most the AHEAD tasks already in RQ and one turn of each lane; first in, first out it
    # would go after all of A's.
    assert sum(t < b_stored for t in a_stored) <= AHEAD + DOWNLOAD_LANES, (b_stored, a_stored[:5])
