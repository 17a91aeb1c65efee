"""Notifications to the user's app end to end: the job JSON, signed the Standard Webhooks way, at least once.

The package's stack (tests/e2e/notify/conftest.py) whose NOTIFY_URL is a real HTTP receiver on 127.0.0.1, listed by exact
host:port in NOTIFY_HOST_ALLOWLIST; every signature is checked with ``standardwebhooks``, the Standard Webhooks
reference library. The outbox, the task and the rules in-process: tests/unit/lifecycle/test_notifications.py.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import redis
import requests
from standardwebhooks import Webhook

from conftest import API
from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from helpers import created_since, job_ids
from notify_helpers import SECRET, Delivery


def _verified(delivery: Delivery) -> dict:
    """The job the body carries, once the reference library has checked its signature (and timestamp) and the body
    is Standard Webhooks' shape around it."""
    body = Webhook(SECRET).verify(delivery.body, delivery.headers)
    assert set(body) == {"type", "timestamp", "data"} and body["type"] == "job.ended", body
    return body["data"]


def _without_image_url(job: dict) -> dict:
    job = json.loads(json.dumps(job))
    if job["image"]:
        job["image"].pop("url")
        job["image"].pop("srcset", None)  # its links are new each link window, as the url
    return job


def test_a_stored_job_notifies_once_with_its_json_and_a_valid_signature(napi, sim, hooks, notify_stack):
    job = napi.submit("a notified fox")
    stored = napi.wait_for(job["id"])
    assert stored["status"] == "stored"
    [delivery] = hooks.wait_for(job["id"])
    assert delivery.path == "/hooks/fluxhook"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["webhook-id"] == f"msg_{job['id']}"
    assert abs(int(delivery.headers["webhook-timestamp"]) - delivery.at) < 5
    assert delivery.headers["webhook-signature"].startswith("v1,")

    body = _verified(delivery)
    # The job JSON exactly as GET /v1/jobs/{id} answers it (the image link is signed at each making).
    assert _without_image_url(body) == _without_image_url(napi.job(job["id"]))
    assert body["image"]["url"].startswith(f"{notify_stack.base_url}/v1/jobs/{job['id']}/image?token=")
    image = requests.get(body["image"]["url"], timeout=10)  # no bearer token: the link is enough
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == body["image"]["sha256"]

    # Delivered: recorded, and never sent again.
    connection = redis.Redis.from_url(notify_stack.env["REDIS_URL"])
    assert wait_until(lambda: connection.hget(KEYS.job(job['id']), "notified_at"), timeout=15)
    assert napi.job(job["id"])["updated_at"] == stored["updated_at"]
    time.sleep(3)
    assert len(hooks.for_job(job["id"])) == 1
    assert connection.zscore(KEYS.outbox, job["id"]) is None


def test_a_failed_job_notifies_too(napi, sim, hooks):
    job = napi.submit("[error] this one fails")
    done = napi.wait_for(job["id"])
    assert done["status"] == "failed"
    [delivery] = hooks.wait_for(job["id"])
    body = _verified(delivery)
    assert (body["status"], body["error"]["code"], body["image"]) == ("failed", "bfl_error", None)
    assert body == napi.job(job["id"])


def test_a_tracked_job_notifies_when_it_ends(napi, sim, hooks):
    response = napi.track("no-such-task-notify")
    assert response.status_code == 201
    job = response.json()
    [delivery] = hooks.wait_for(job["id"], timeout=30)
    body = _verified(delivery)
    assert (body["status"], body["error"]["code"]) == ("failed", "task_not_found")


def test_500_twice_then_200_is_three_deliveries_with_one_webhook_id(napi, sim, hooks, notify_stack):
    hooks.failures = 2
    job = napi.submit("a fox behind a flaky app")
    napi.wait_for(job["id"])
    deliveries = hooks.wait_for(job["id"], count=3, timeout=40)
    assert {d.headers["webhook-id"] for d in deliveries} == {f"msg_{job['id']}"}
    for delivery in deliveries:
        assert _verified(delivery)["id"] == job["id"]  # each attempt signed with its own timestamp
    stamps = [int(d.headers["webhook-timestamp"]) for d in deliveries]
    assert stamps == sorted(stamps)
    # The first retries come within seconds (1-2 s, then 2-4 s, plus the scheduler's polling).
    assert deliveries[2].at - deliveries[0].at < 15
    time.sleep(5)
    assert len(hooks.for_job(job["id"])) == 3  # the 200 ended it

    # The worker writes its counts every few seconds.
    wait_until(lambda: all(f'fluxhook_notifications_total{{outcome="{outcome}"}}' in API(notify_stack.base_url).get(
        "/metrics").text for outcome in ("retry", "delivered")), timeout=15, message="the notifications' counts")
    # Neither the secret nor a signature reaches a log line.
    signatures = [d.headers["webhook-signature"].split(",", 1)[1] for d in deliveries]
    for log in notify_stack.var_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
        assert not any(signature in text for signature in signatures)


def test_a_job_with_its_own_notify_url_notifies_there(napi, sim, hooks, other_hooks):
    own = other_hooks.url("/mine?token=abc")
    job = napi.submit("a fox with its own hook", notify_url=own)
    napi.wait_for(job["id"])
    [delivery] = other_hooks.wait_for(job["id"])
    assert delivery.path == "/mine?token=abc"
    assert _verified(delivery)["id"] == job["id"]
    tracked = napi.track("own-hook-no-such-task", notify_url=other_hooks.url("/tracked"))
    assert tracked.status_code == 201
    [delivery] = other_hooks.wait_for(tracked.json()["id"], timeout=30)
    assert delivery.path == "/tracked"
    assert hooks.for_job(job["id"]) == [] and hooks.for_job(tracked.json()["id"]) == []


def test_a_4xx_answer_is_not_retried(napi, sim, other_hooks):
    other_hooks.statuses["/refused"] = 404
    job = napi.submit("a fox nobody wants", notify_url=other_hooks.url("/refused"))
    napi.wait_for(job["id"])
    other_hooks.wait_for(job["id"])
    time.sleep(6)  # past the first two retries, had there been any
    assert len(other_hooks.for_job(job["id"])) == 1
    [message] = napi.get(f"/v1/jobs/{job['id']}/deliveries").json()["deliveries"]
    assert message["state"] == "failed" and [a["status"] for a in message["attempts"]] == [404]


@pytest.mark.parametrize("notify_url, why", [
    ("https://elsewhere.example.com/hook", "not in the allowlist"),
    ("http://127.0.0.1:1/hook", "not in the allowlist"),
    ("ftp://127.0.0.1/hook", "http(s) URL"),
    ("https://user:pw@app.example.com/hook", "not allowed"),
    ("http://127.0.0.1/" + "x" * 2048, "2048"),
    (42, "http(s) URL"),
])
def test_a_notify_url_not_allowed_is_refused_and_creates_nothing(napi, sim, notify_url, why):
    before = job_ids(napi)
    stats = sim.stats()
    for response in (napi.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"},
                                                 "notify_url": notify_url}),
                     napi.track("never-tracked-task", notify_url=notify_url)):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "notify_url" in error["message"] and why in error["message"]
    assert created_since(napi, before) == []
    assert sim.stats()["submitted"] == stats["submitted"]


def test_without_notify_secret_a_notify_url_is_refused_with_the_reason(api):
    # The session stack has no NOTIFY_SECRET (and no NOTIFY_URL): its jobs notify nobody.
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"},
                                          "notify_url": "https://app.example.com/hook"})
    assert response.status_code == 400
    assert "NOTIFY_SECRET" in response.json()["error"]["message"]
