"""A web process SIGKILLed while it makes key X's 10,000-item batch (docs/api.md, docs/operating.md): the batch it left
holds the items made and is canceled, with `creation_interrupted` saying how many of how many, and ends, so X sending it
again makes no item twice; key V's batch, posted meanwhile, waits for the dead process's turn to lapse and is made; V
never sees X's. The Procfile's processes of this module's own on Redis and the simulator."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from conftest import API
from devtools.processes import wait_until
from fluxhook.core.holds import BATCH_MAKING_LEASE
from fluxhook.store.keys import KEYS
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)
ITEMS = 10_000


@pytest.fixture(scope="module")
def maker_stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("killed-maker")),
                     DB) as running:
        yield running


def _post(base_url: str, token: str, items: int, answers: list) -> None:
    try:
        answers.append(requests.post(f"{base_url}/v1/batches", headers={"Authorization": f"Bearer {token}"},
                                     json={"model": "flux-2-pro", "items": [
                                         {"input": {"prompt": f"[pending] X's item {i}"}} for i in range(items)]},
                                     timeout=120))
    except requests.RequestException as exc:
        answers.append(exc)


def test_a_batch_whose_web_process_died_mid_making_is_cut_to_its_items_and_ends_and_another_keys_is_made(
        maker_stack, sim):
    admin = API(maker_stack.base_url)
    x_key, _ = make_key(admin, max_active=2)
    v_key, _ = make_key(admin)
    db = redis.Redis.from_url(maker_stack.env["REDIS_URL"])
    answers: list = []
    threading.Thread(target=_post, args=(maker_stack.base_url, x_key["key"], ITEMS, answers), daemon=True).start()
    batch_id = wait_until(lambda: next((b.decode() for b in db.zrange(KEYS.batches_unmade, 0, 0)), None), timeout=60,
                          interval=0.02, message="X's batch to be recorded")
    wait_until(lambda: db.zcard(KEYS.batch_jobs(batch_id)) > 0, timeout=30, interval=0.01,
               message="X's first items to be made")
    web = maker_stack.processes.pop("web")
    os.killpg(web.pid, signal.SIGKILL)  # gunicorn and its workers, as when a container dies
    web.wait(timeout=30)
    killed = time.monotonic()
    maker_stack.start("web")
    wait_until(lambda: answers, timeout=30, message="X's request to end")
    assert isinstance(answers[0], requests.RequestException), answers[0]  # X heard nothing of its batch

    x, v = API(maker_stack.base_url, token=x_key["key"]), API(maker_stack.base_url, token=v_key["key"])
    # V's batch waits in the room for the dead process's turn to lapse (or is told to come back), then is made.
    vs = v.post("/v1/batches", timeout=60, headers={"Idempotency-Key": "v-beside-the-killed-maker"},
                json={"model": "flux-2-pro", "items": [{"input": {"prompt": "[pending] V's item"}}] * 3})
    if vs.status_code == 503:
        assert vs.json()["error"]["code"] == "batches_busy"
        time.sleep(int(vs.headers["Retry-After"]))
        vs = v.post("/v1/batches", timeout=60, headers={"Idempotency-Key": "v-beside-the-killed-maker"},
                    json={"model": "flux-2-pro", "items": [{"input": {"prompt": "[pending] V's item"}}] * 3})
    assert vs.status_code == 202 and vs.json()["counts"]["total"] == 3, vs.text
    assert time.monotonic() - killed < BATCH_MAKING_LEASE + 20

    cut = wait_until(lambda: (lambda b: b if b["error"] else None)(x.get(f"/v1/batches/{batch_id}").json()),
                     timeout=BATCH_MAKING_LEASE + 20, message="X's batch to be cut short")
    made = db.zcard(KEYS.batch_jobs(batch_id))
    assert 0 < made < ITEMS and cut["counts"]["total"] == made and cut["status"] == "canceled", cut
    assert cut["error"]["code"] == "creation_interrupted"
    assert f"after {made:,} of its {ITEMS:,} items" in cut["error"]["message"], cut["error"]
    listed = x.get("/v1/jobs", params={"batch_id": batch_id, "limit": 100}).json()
    assert listed["jobs"] and all(job["batch_id"] == batch_id for job in listed["jobs"])

    def ended():
        # The items BFL has go on: BFL finishes them, and they are stored as any item is.
        for job in x.get("/v1/jobs", params={"batch_id": batch_id, "status": "submitted"}).json()["jobs"]:
            sim.complete(job["bfl_id"])
        return (lambda b: b if b["ended_at"] else None)(x.get(f"/v1/batches/{batch_id}").json())

    ended = wait_until(ended, timeout=60, interval=0.5, message="X's cut batch to end")
    counts = {name: n for name, n in ended["counts"].items() if n}
    assert counts.pop("total") == made and set(counts) <= {"aborted", "stored"} and sum(counts.values()) == made
    assert counts.get("stored", 0) <= 2  # at most its max_active had reached BFL
    assert v.get(f"/v1/batches/{batch_id}").status_code == 404
    assert [b["id"] for b in v.get("/v1/batches").json()["batches"]] == [vs.json()["id"]]
