"""What the static URL keeps for tasks nobody tracks yet is bounded per app key and in total, so one tenant's flood
never fills another's room (docs/callbacks.md, docs/operating.md). The static secret is the account's, so a callback
cannot be told apart by key: what is kept is only that a task was reported, a bit in a fixed bitmap, never refused. Two
tenants, V and X, each an app key, against the Procfile's web and worker over real HTTP, with BFL answering submissions
after about a second."""

from __future__ import annotations

import uuid

import redis
import requests

from fluxhook.store.kept_callbacks import MARK_BYTES
from fluxhook.store.keys import KEYS
from helpers import wait_sim_ready

from .tenancy_helpers import as_bfl, bfl_sha256, sim_task, static_post, tenants

# More made-up task ids than the room a release before this one gave an account (1,000 callbacks).
FLOOD = 1500


def test_a_tenants_flood_of_made_up_tasks_never_refuses_another_tenants_early_callback(api, sim, stack):
    as_bfl(sim)
    v, _x = tenants(api)
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    used_before = connection.info("memory")["used_memory"]

    # X, who holds the account's static secret, reports tasks nobody tracks, as fast as it can.
    http = requests.Session()
    flood = [static_post(api, {"id": f"made-up-{uuid.uuid4()}", "status": "Ready", "result": {"sample": "x"}},
                         session=http).status_code for _ in range(FLOOD)]
    assert set(flood) == {202}
    marks = list(connection.scan_iter(KEYS.kept_marks("default", "*"), count=1000))
    assert sum(connection.strlen(key) for key in marks) <= 2 * MARK_BYTES
    assert connection.info("memory")["used_memory"] - used_before < 8 * 1024 * 1024

    # V's task ends before V tracks it: its callback comes first, and is kept.
    task = sim_task(sim, "V's task, done before V tracks it")
    result = wait_sim_ready(sim, task["id"])
    early = static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]})
    assert early.status_code == 202, early.text

    tracked = v.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    stored = v.wait_for(tracked.json()["id"])
    # Applied: the kept report made V's job ask BFL at once, and it stored BFL's result.
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1
    assert stored["image"]["sha256"] == bfl_sha256(sim, task["id"])
