"""The core loop end to end through the Procfile's processes: submit, callback, download, store, serve."""

from __future__ import annotations

import hashlib

import requests


def test_submitted_job_is_stored_and_served_byte_identical(api, sim):
    job = api.submit("a lighthouse at dawn", metadata={"user": "u1"})
    assert job["status"] == "submitted"
    assert job["bfl_status"] == "Pending"
    assert job["metadata"] == {"user": "u1"}

    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["source"] == "webhook"
    assert stored["attempts"] == {"webhooks": 1, "polls": 0, "downloads": 1}
    assert stored["completed_at"] is not None

    original = sim.image_bytes(stored["bfl_id"])
    served = api.get(f"/v1/jobs/{job['id']}/image")
    assert served.status_code == 200
    assert served.content == original
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["ETag"] == f'"{hashlib.sha256(original).hexdigest()}"'
    image = stored["image"]
    assert image["sha256"] == hashlib.sha256(original).hexdigest()
    assert image["size"] == len(original)
    assert (image["width"], image["height"]) == (64, 48)

    # The signed image.url works without a bearer token, as an <img> tag would use it.
    assert image["url"].startswith(api.base_url + f"/v1/jobs/{job['id']}/image?")
    anonymous = requests.get(image["url"], timeout=10)
    assert anonymous.status_code == 200 and anonymous.content == original


def test_task_sees_its_own_webhook_url_and_secret(api, sim):
    job = api.submit("[pending] a cat")
    task = sim.task(job["bfl_id"])
    assert task["webhook_url"].startswith(api.base_url + "/webhooks/bfl/")
    assert task["has_webhook_secret"] is True
