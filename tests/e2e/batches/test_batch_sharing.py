"""A batch beside interactive work, over real HTTP with held BFL tasks (docs/api.md "Interactive first, fair always"):
a key's single job takes the next slot its key frees ahead of the key's batch, another key's jobs never wait behind
it, a batch holds no more than its key's max_active, its items reserve the day's credits one at a time as they are
sent, and Cancel-After ends its items as it ends a job."""

from __future__ import annotations

import json
import time

import redis

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from key_helpers import make_key


def _items(n: int, prompt: str) -> list[dict]:
    return [{"input": {"prompt": f"{prompt} {i}"}} for i in range(n)]


def _counts(client, batch_id: str) -> dict:
    return client.get(f"/v1/batches/{batch_id}").json()["counts"]


def _jobs(client, batch_id: str, status: str) -> list[dict]:
    return client.get("/v1/jobs", params={"batch_id": batch_id, "status": status}).json()["jobs"]


def test_a_single_job_takes_its_keys_next_free_slot_before_the_batch(api, sim):
    _, a = make_key(api, max_active=2)
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(6, "[pending] catalog")}).json()
    wait_until(lambda: _counts(a, batch["id"])["submitted"] == 2, timeout=30, interval=0.3, message="the batch at its max_active")
    single = a.submit("[pending] a user waits for this one")
    other = b.submit("[pending] another app's job")

    # B's job is sent at once: A's batch holds A's slots, not B's.
    assert b.wait_for(other["id"], "submitted")["status"] == "submitted"
    assert a.job(single["id"])["status"] == "queued" and _counts(a, batch["id"])["submitted"] == 2
    sim.complete(_jobs(a, batch["id"], "submitted")[0]["bfl_id"])

    assert a.wait_for(single["id"], "submitted")["status"] == "submitted"
    counts = _counts(a, batch["id"])
    assert counts["queued"] == 4 and counts["submitted"] == 1  # the freed slot went to the single job
    a.post(f"/v1/batches/{batch['id']}/cancel")
    for job in (single, other):
        (a if job is single else b).post(f"/v1/jobs/{job['id']}/cancel")


def test_a_batch_larger_than_the_days_credits_stops_there_and_its_rest_waits(api):
    _, a = make_key(api, daily_credits=7)  # flux-2-pro tasks of 3 credits
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(5, "[seconds-1] budget")}).json()

    def stopped() -> list[dict] | None:
        counts, queued = _counts(a, batch["id"]), _jobs(a, batch["id"], "queued")
        at_limit = [j for j in queued if (j["waiting"] or {}).get("reason") == "key_daily_credits"]
        return at_limit if counts["stored"] >= 2 and counts["stored"] + len(at_limit) == 5 else None

    waiting = wait_until(stopped, timeout=60, interval=0.5, message="the batch stopped at the day's credits")
    assert len(waiting) >= 2
    shown = a.get(f"/v1/batches/{batch['id']}").json()
    # Each item reserved as it was sent: the last one sent may go past the limit by one task (it goes alone, docs/callbacks.md).
    assert shown["status"] == "running" and 6 <= shown["cost"]["credits"] <= 7 + 3
    theirs = b.submit("B is not held by A's budget")
    assert b.wait_for(theirs["id"], "stored")["status"] == "stored"
    a.post(f"/v1/batches/{batch['id']}/cancel")


def test_cancel_after_ends_each_item_as_it_ends_a_job(api):
    _, a = make_key(api, max_active=1)
    made = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(3, "[pending] deadline")},
                  headers={"Cancel-After": "5s"})
    assert made.status_code == 202, made.text
    batch = made.json()

    ended = wait_until(lambda: (lambda b: b if b["status"] == "ended" else None)(
        a.get(f"/v1/batches/{batch['id']}").json()), timeout=30, interval=0.3, message="the batch ended by its deadline")

    assert ended["counts"]["aborted"] == 2 and ended["counts"]["canceled"] == 1
    lines = [json.loads(line) for line in a.get(f"/v1/batches/{batch['id']}/results").text.splitlines()]
    assert [x["index"] for x in lines] == [0, 1, 2]
    assert sorted(x["error"]["code"] for x in lines if x["status"] == "aborted") == ["deadline_exceeded"] * 2


def test_a_single_job_is_stored_ahead_of_its_own_batch_s_queued_downloads(api, sim, redis_server):
    # Every result file trickles for 1 s: 40 items' downloads hold the stack's lanes about 10 s.
    sim.settings(delivery_delay=1.0)
    _, a = make_key(api)
    _, b = make_key(api)
    db = redis.Redis.from_url(redis_server.url)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(40, "catalog")}).json()
    wait_until(lambda: (lambda c: c["queued"] + c["submitted"] == 0 and c["stored"] < 30 or None)(_counts(a, batch["id"])),
               timeout=60, interval=0.2, message="the batch's downloads queued")

    def waited_after_ready(client, job: dict) -> float:
        """Seconds from when the job is first seen ready (its callback) to stored, less its own download's (its
        timeline's download entry): what it waited for others' downloads."""
        ready = client.wait_for(job["id"], "ready", "stored", timeout=30)
        seen = time.monotonic()
        if ready["status"] != "stored":
            client.wait_for(job["id"], "stored", timeout=60)
        took = time.monotonic() - seen
        entries = [json.loads(entry) for entry in db.lrange(KEYS.timeline(job["id"]), 0, -1)]
        return took - sum(entry["seconds"] for entry in entries if entry["kind"] == "download")

    mine, theirs = a.submit("a user waits for this one"), b.submit("another app's job")
    # Its own download's time + 2 s (docs/architecture.md's rule), not the 10 s of the batch's downloads queued before it: at most
    # the downloads already in the lanes and the few RQ holds ahead (AHEAD, 4 for 4 lanes) go first.
    assert waited_after_ready(a, mine) <= 2.0
    assert _counts(a, batch["id"])["stored"] < 40  # the batch's downloads were still queued
    assert waited_after_ready(b, theirs) <= 2.0
    wait_until(lambda: _counts(a, batch["id"])["stored"] == 40 or None, timeout=60, interval=0.3,
               message="the batch stored")
