"""Sends paced by storage, end to end: the Procfile's processes, BFL finishing results about twice as fast as the one
worker's one download lane stores them, each link living 30 s with no fresh link for a lapsed one. Key A's batch
is held back by storage (its items wait with reason ``storage``), key B's single jobs still go as room comes, and no
result's link lapses before its download: 0 expired, 0 deliveries refused for a lapsed link."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from conftest import API, API_TOKEN
from devtools.processes import wait_until
from helpers import stack_on_db
from key_helpers import make_key

ITEMS = 200
# Long enough for what BFL finishes before the first judgement (a sweep reads the backlog every few seconds until it
# nears the floor), short enough that the held backlog's seconds are judged against it.
URL_LIFE = 30


@pytest.fixture()
def paced(own_redis, simulator, _spies, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text(f'[models."flux-2-pro"]\nkind = "image"\nurl_life = {URL_LIFE}\n', encoding="utf-8")
    simulator.reset()
    # Six slots of tasks of 0.3 s finish over ten a second; one lane storing each file in 0.2 s keeps five. With pacing
    # off and links of 16 s, 84 of the 200 lapsed before their downloads.
    simulator.settings(url_ttl=URL_LIFE, fresh_links=False, delivery_delay=0.2, task_delay=0.3)
    with stack_on_db(own_redis, simulator, _spies[0].port, Path(tmp_path), 0, BFL_MODELS_FILE=str(models),
                     BFL_MAX_ACTIVE="6", WORKER_DOWNLOAD_CONCURRENCY="1", STORE_PACING_FLOOR="4") as running:
        yield API(running.base_url, token=API_TOKEN)
    simulator.reset()


def test_no_result_expires_when_storage_is_slower_than_bfl_and_another_key_still_goes(paced, simulator):
    _, a = make_key(paced)
    _, b = make_key(paced)
    made = a.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"catalog {i}"}} for i in range(ITEMS)]})
    assert made.status_code == 202, made.text
    batch = made.json()

    def held_for_storage() -> dict | None:
        queued = a.get("/v1/jobs", params={"batch_id": batch["id"], "status": "queued"}).json()["jobs"]
        return next((j for j in queued if (j["waiting"] or {}).get("reason") == "storage"), None)

    held = wait_until(held_for_storage, timeout=60, interval=0.2, message="the batch's items held by storage")
    assert held["waiting"]["reason"] == "storage"
    # The batch says so too, while it holds items queued.
    wait_until(lambda: (a.get(f"/v1/batches/{batch['id']}").json()["waiting"] or {}).get("reason") == "storage",
               timeout=30, interval=0.2, message="the batch waiting for storage")
    # While A's batch waits for storage, B's single job goes as room comes, in its turn.
    single = b.submit("another app's job")
    assert b.wait_for(single["id"], "stored", timeout=60)["status"] == "stored"

    ended = wait_until(lambda: (lambda got: got if got["ended_at"] else None)(a.get(f"/v1/batches/{batch['id']}").json()),
                       timeout=180, interval=0.5, message="the batch to end")
    assert ended["counts"]["stored"] == ITEMS and ended["counts"]["expired"] == 0, ended["counts"]
    assert ended["sent"] == ITEMS
    assert simulator.stats()["deliveries_expired"] == 0
    metrics = requests.get(f"{paced.base_url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    assert "fluxhook_store_backlog_seconds{" in metrics.text and "fluxhook_sends_waiting_storage" in metrics.text
