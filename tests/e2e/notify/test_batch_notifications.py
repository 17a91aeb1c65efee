"""A batch's notifications: one ``batch.ended`` message, the batch object, signed with its key's secret
and listed in the deliveries console; its items' ``job.*`` messages only when ``notify_events`` asks. Two keys: the
other key's receiver gets none of it and cannot verify it."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from devtools.processes import wait_until
from key_helpers import make_key
from notify_helpers import SECRET


def _items(n: int) -> list[dict]:
    return [{"input": {"prompt": f"a batch shot {i}"}} for i in range(n)]


def test_one_batch_ended_message_signed_with_its_keys_secret(napi, sim, hooks, other_hooks):
    key_a, a = make_key(napi, notify_url=hooks.url("/a"))
    key_b, b = make_key(napi, notify_url=other_hooks.url("/b"))
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(3)}).json()
    job_b = b.submit("B's own notified job")

    [delivery] = hooks.wait_for(batch["id"])  # msg_<batch id>
    body = Webhook(key_a["notify_secret"]).verify(delivery.body, delivery.headers)
    assert body["type"] == "batch.ended" and body["data"]["id"] == batch["id"]
    assert body["data"]["status"] == "ended" and body["data"]["counts"]["stored"] == 3
    for wrong in (key_b["notify_secret"], SECRET):
        with pytest.raises(WebhookVerificationError):
            Webhook(wrong).verify(delivery.body, delivery.headers)
    # Its items ask for no messages of their own: only the batch's end came.
    time.sleep(2)
    assert [d.headers["webhook-id"] for d in hooks.deliveries if d.path == "/a"] == [f"msg_{batch['id']}"]
    # B's own job notifies B's receiver, and nothing of A's goes there.
    other_hooks.wait_for(job_b["id"])
    assert all(batch["id"] not in d.body.decode() for d in other_hooks.deliveries)

    listed = wait_until(lambda: [m for m in a.get("/v1/deliveries").json()["deliveries"]
                                 if m["id"] == f"msg_{batch['id']}" and m["state"] == "delivered"], timeout=15)
    assert listed[0]["event"] == "batch.ended"
    assert f"msg_{batch['id']}" not in [m["id"] for m in b.get("/v1/deliveries").json()["deliveries"]]


def test_items_notify_only_when_notify_events_asks(napi, sim, hooks):
    key, a = make_key(napi)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2), "notify_url": hooks.url("/items"),
                                        "notify_events": ["batch.ended", "job.ended"]}).json()

    hooks.wait_for(batch["id"])
    jobs = a.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"]
    for job in jobs:
        [delivery] = hooks.wait_for(job["id"])
        assert Webhook(key["notify_secret"]).verify(delivery.body, delivery.headers)["data"]["batch_id"] == batch["id"]


def test_a_canceled_batch_with_items_at_bfl_ends_with_them_and_sends_one_batch_ended(napi, sim, hooks, other_hooks):
    key, a = make_key(napi, max_active=2, notify_url=hooks.url("/canceled"))
    _, b = make_key(napi, notify_url=other_hooks.url("/b"))
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"[pending] held {i}"}, "metadata": {"sku": f"S-{i}"}} for i in range(6)]}).json()
    theirs = b.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2)}).json()
    wait_until(lambda: a.get(f"/v1/batches/{batch['id']}").json()["counts"]["submitted"] == 2, timeout=30,
               message="two items at BFL")

    shown = a.post(f"/v1/batches/{batch['id']}/cancel").json()

    # Counts as they stand: the two at BFL go on (never shown canceled), the four unsent are aborted; not ended yet.
    assert (shown["counts"]["submitted"], shown["counts"]["aborted"], shown["counts"]["canceled"]) == (2, 4, 0)
    assert shown["status"] == "canceled" and shown["ended_at"] is None
    assert hooks.for_message(f"msg_{batch['id']}") == []
    for job in a.get("/v1/jobs", params={"batch_id": batch["id"], "status": "submitted"}).json()["jobs"]:
        sim.complete(job["bfl_id"])

    [delivery] = hooks.wait_for(batch["id"])
    body = Webhook(key["notify_secret"]).verify(delivery.body, delivery.headers)
    ended = body["data"]
    assert body["type"] == "batch.ended" and ended["status"] == "canceled" and ended["ended_at"]
    assert (ended["counts"]["stored"], ended["counts"]["aborted"], ended["counts"]["canceled"]) == (2, 4, 0)
    results = [json.loads(line) for line in a.get(f"/v1/batches/{batch['id']}/results").text.splitlines()]
    assert sorted(r["metadata"]["sku"] for r in results if r["status"] == "stored") == \
        sorted(j["metadata"]["sku"] for j in a.get("/v1/jobs", params={"batch_id": batch["id"],
                                                                        "status": "stored"}).json()["jobs"])
    # Exactly one message for the batch, however its items ended; B's batch, untouched, ends as its own.
    wait_until(lambda: [m for m in a.get("/v1/deliveries").json()["deliveries"]
                        if m["id"] == f"msg_{batch['id']}" and m["state"] == "delivered"], timeout=15)
    other_hooks.wait_for(theirs["id"])
    assert len(hooks.for_message(f"msg_{batch['id']}")) == 1
    assert b.get(f"/v1/batches/{theirs['id']}").json()["counts"]["stored"] == 2
