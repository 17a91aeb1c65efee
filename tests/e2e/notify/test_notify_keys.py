"""Each app its own notifications (docs/api.md "Whose"): a key's notify_url and its own secret, shown once and
rotated with a day of two signatures, so no app can sign another app's notifications (the tenant attack)."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from key_helpers import make_key
from notify_helpers import SECRET


def _ended(receiver, job_id: str):
    [delivery] = receiver.wait_for(job_id)
    return delivery


def test_each_key_signs_with_its_own_secret_and_not_another_s(napi, sim, hooks, other_hooks, third_hooks):
    key_a, app_a = make_key(napi, notify_url=other_hooks.url("/a"))
    key_b, app_b = make_key(napi, notify_url=third_hooks.url("/b"))
    secret_a, secret_b = key_a["notify_secret"], key_b["notify_secret"]
    assert secret_a.startswith("whsec_") and secret_b.startswith("whsec_") and secret_a != secret_b
    assert key_a["notify_url"] == other_hooks.url("/a")

    job_a, job_b = app_a.submit("a fox for app a"), app_b.submit("a fox for app b")
    delivery_a, delivery_b = _ended(other_hooks, job_a["id"]), _ended(third_hooks, job_b["id"])
    assert delivery_a.path == "/a" and delivery_b.path == "/b"
    assert Webhook(secret_a).verify(delivery_a.body, delivery_a.headers)["data"]["id"] == job_a["id"]
    assert Webhook(secret_b).verify(delivery_b.body, delivery_b.headers)["data"]["id"] == job_b["id"]
    # The tenant attack: A's secret verifies none of B's notifications, nor B's A's, nor the service's either.
    for delivery, wrong in ((delivery_b, secret_a), (delivery_a, secret_b), (delivery_a, SECRET)):
        with pytest.raises(WebhookVerificationError):
            Webhook(wrong).verify(delivery.body, delivery.headers)
    assert hooks.for_job(job_a["id"]) == [] and hooks.for_job(job_b["id"]) == []


def test_a_job_s_own_notify_url_comes_before_its_key_s(napi, sim, other_hooks, third_hooks):
    key, app = make_key(napi, notify_url=other_hooks.url("/key"))
    job = app.submit("a fox with a hook of its own", notify_url=third_hooks.url("/own"))
    delivery = _ended(third_hooks, job["id"])
    assert delivery.path == "/own" and other_hooks.for_job(job["id"]) == []
    assert Webhook(key["notify_secret"]).verify(delivery.body, delivery.headers)["data"]["id"] == job["id"]


def test_a_rotation_signs_with_both_secrets_for_a_day(napi, sim, other_hooks):
    key, app = make_key(napi, notify_url=other_hooks.url("/rotating"))
    old = key["notify_secret"]
    rotated = napi.post(f"/v1/keys/{key['id']}/notify_secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["notify_secret"]
    assert new.startswith("whsec_") and new != old and rotated.json()["notify_secret_rotated_at"]
    assert "notify_secret" not in napi.get(f"/v1/keys/{key['id']}").json()

    job = app.submit("a fox during a rotation")
    delivery = _ended(other_hooks, job["id"])
    signatures = delivery.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (old, new):  # an app on either secret verifies it
        assert Webhook(secret).verify(delivery.body, delivery.headers)["data"]["id"] == job["id"]
    assert napi.post("/v1/keys/key_0000000000000000/notify_secret").status_code == 404
    assert app.post(f"/v1/keys/{key['id']}/notify_secret").status_code == 403


def test_a_key_s_notify_url_must_be_allowed(napi):
    response = napi.post("/v1/keys", json={"name": "elsewhere", "notify_url": "https://elsewhere.example.com/h"})
    assert response.status_code == 400 and "NOTIFY_HOST_ALLOWLIST" in response.json()["error"]["message"]
    response = napi.post("/v1/keys", json={"name": "events", "notify_events": ["job.exploded"]})
    assert response.status_code == 400 and "job.submitted" in response.json()["error"]["message"]
