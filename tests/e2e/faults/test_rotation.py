"""Key rotation: SECRET_KEY and BFL_WEBHOOK_SECRET accept their previous values, so in-flight jobs survive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
import requests

from conftest import API, SECRET_KEY, STATIC_SECRET, ready_payload, service_env
from devtools.processes import free_port
from devtools.stack import SIMULATOR_KEY, Stack
from fluxhook.core import signing

NEW_KEY = "rotated-secret-key-fedcba9876543210"
NEW_STATIC = "rotated-static-webhook-secret"


@pytest.fixture()
def rotating(redis_server, simulator, _spies, tmp_path):
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{tmp_path / 'images'}", CALLBACK_GRACE_SECONDS="600"))
    env["REDIS_URL"] = redis_server.url.replace("/0", "/7")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=Path(tmp_path))
    running.start()
    yield running
    running.stop()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


def _restart(stack: Stack, **changes: str | None) -> None:
    stack.stop()
    for name, value in changes.items():
        if value is None:
            stack.env.pop(name, None)
        else:
            stack.env[name] = value
    stack.start()


def test_jobs_in_flight_survive_a_rotation_and_old_values_stop_working_once_dropped(rotating, sim):
    api = API(rotating.base_url)
    done = api.submit("before the rotation")
    done = api.wait_for(done["id"])
    old_image_url = done["image"]["url"]
    # Sent before the stack stops (the session's simulator may hold the job in line for a slot a moment).
    in_flight = api.wait_for(api.submit("[pending] in flight during the rotation")["id"], "submitted")
    elsewhere = requests.post(f"{sim.url}/v1/flux-2-pro", headers={"x-key": SIMULATOR_KEY}, timeout=10, json={
        "prompt": "[pending] submitted by the app", "webhook_url": rotating.base_url + "/webhooks/bfl",
        "webhook_secret": STATIC_SECRET}).json()
    assert api.track(elsewhere["id"]).status_code == 201

    _restart(rotating, SECRET_KEY=NEW_KEY, SECRET_KEY_PREVIOUS=SECRET_KEY,
             BFL_WEBHOOK_SECRET=NEW_STATIC, BFL_WEBHOOK_SECRET_PREVIOUS=STATIC_SECRET)

    assert requests.get(old_image_url, timeout=10).status_code == 200
    fresh_url = api.job(done["id"])["image"]["url"]
    assert fresh_url != old_image_url and requests.get(fresh_url, timeout=10).status_code == 200
    # BFL calls back the URL and secret minted before the rotation. A running task is polled every 10 s or so
    # (docs/api.md, live) and a restart on a loaded host can take that long: such a poll finds it pending, and the result
    # still comes by the callback.
    sim.complete(in_flight["bfl_id"])
    sim.complete(elsewhere["id"])
    stored = api.wait_for(in_flight["id"])
    assert (stored["status"], stored["source"], stored["attempts"]["webhooks"]) == ("stored", "webhook", 1)
    tracked = api.wait_for(api.track(elsewhere["id"]).json()["id"])
    assert (tracked["status"], tracked["attempts"]["webhooks"]) == ("stored", 1)

    _restart(rotating, SECRET_KEY_PREVIOUS=None, BFL_WEBHOOK_SECRET_PREVIOUS=None)

    assert requests.get(old_image_url, timeout=10).status_code == 401
    assert requests.get(api.job(done["id"])["image"]["url"], timeout=10).status_code == 200
    late = api.wait_for(api.submit("[pending] after the rotation")["id"], "submitted")
    old_url = signing.job_webhook_url(rotating.base_url, SECRET_KEY, late["id"])
    old_secret = signing.job_webhook_secret(SECRET_KEY, late["id"])
    payload = ready_payload(late["bfl_id"], f"{sim.url}/x.png")
    refused = requests.post(old_url, json=payload, headers={"X-Webhook-Secret": old_secret}, timeout=10)
    assert refused.status_code == 401
    static = requests.post(rotating.base_url + "/webhooks/bfl", json=payload,
                           headers={"X-Webhook-Secret": STATIC_SECRET}, timeout=10)
    assert static.status_code == 401
    assert api.job(late["id"])["status"] == "submitted"
