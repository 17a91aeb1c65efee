"""Callbacks that arrive in awkward order or unproven, against the Procfile's processes."""

from __future__ import annotations

import io
import threading

import redis
from PIL import Image

from conftest import ready_payload
from devtools.processes import wait_until
from fluxhook import status as st
from fluxhook.config import Config
from fluxhook.jobs import Job, JobStore, new_job_id
from fluxhook.orphans import apply_kept_callback
from fluxhook.services import build_services


def test_an_unproven_ready_with_a_refused_url_cannot_end_a_running_job(api, sim, unlisted_spy):
    job = api.submit("[pending] [drop] really still running")
    forged = api.callback(job["id"], ready_payload(job["bfl_id"], f"{unlisted_spy.url}/x.png"), secret=None)
    assert forged.status_code == 200
    # The refused URL is checked with BFL, which says Pending: the job goes back to waiting.
    back = wait_until(lambda: (lambda j: j if j["attempts"]["polls"] >= 1 and j["status"] == "submitted" else None)(
        api.job(job["id"])), timeout=15, message="the forged Ready to be refuted")
    assert back["bfl_status"] == "Pending" and back["error"] is None and back["image"] is None
    assert unlisted_spy.hits == []

    sim.complete(job["bfl_id"])
    sample = sim.result(job["bfl_id"])["result"]["sample"]
    genuine = api.callback(job["id"], ready_payload(job["bfl_id"], sample))
    assert genuine.status_code == 200 and genuine.json()["outcome"] == "download_queued"
    assert api.wait_for(job["id"])["status"] == "stored"


def test_a_proven_ready_with_a_refused_url_fails_at_once(api, sim, unlisted_spy):
    job = api.submit("[pending] refused")
    api.callback(job["id"], ready_payload(job["bfl_id"], f"{unlisted_spy.url}/x.png"))
    done = api.wait_for(job["id"])
    assert (done["status"], done["error"]["code"], done["attempts"]["polls"]) == ("failed", "host_not_allowed", 0)


def test_a_late_pending_does_not_overwrite_ready(api, sim, spy):
    release = threading.Event()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    data = out.getvalue()

    def slow():
        release.wait(10)
        return 200, {"Content-Type": "image/png"}, data

    url = spy.route("/slow.png", body=slow)
    job = api.submit("[pending] slow delivery")
    api.callback(job["id"], ready_payload(job["bfl_id"], url))
    api.wait_for(job["id"], "ready")
    wait_until(lambda: spy.hits, message="the download to start")
    late = api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"})
    assert late.status_code == 200
    assert api.job(job["id"])["bfl_status"] == "Ready"
    release.set()
    done = api.wait_for(job["id"])
    assert (done["status"], done["bfl_status"]) == ("stored", "Ready")


def test_a_callback_that_overtakes_the_submission_is_kept_and_applied(api, sim, stack):
    store = JobStore(redis.Redis.from_url(stack.env["REDIS_URL"]))
    job, _ = store.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"))
    # A real finished task, as BFL would have it while its answer to our POST is still on the way.
    task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[drop] overtaken"},
                         headers={"x-key": "sim-dev-key"}, timeout=10).json()
    wait_until(lambda: sim.task(task["id"])["status"] == "Ready", message="the task to finish")
    sample = sim.result(task["id"])["result"]["sample"]

    unproven = api.callback(job.id, ready_payload(task["id"], sample), secret=None)
    assert unproven.status_code == 409
    early = api.callback(job.id, ready_payload(task["id"], sample))
    assert early.status_code == 202 and early.json()["outcome"] == "kept_until_submitted"
    assert api.job(job.id)["status"] == "queued"

    # What the submission does once BFL's answer arrives: record the task, then apply what was kept.
    assert store.transition(job.id, st.SUBMITTED, bfl_id=task["id"])
    assert apply_kept_callback(build_services(Config.from_env(stack.env)), store.get(job.id)) == "download_queued"
    done = api.wait_for(job.id)
    assert done["status"] == "stored" and done["attempts"]["webhooks"] == 1
