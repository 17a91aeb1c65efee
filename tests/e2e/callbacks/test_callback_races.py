"""Callbacks that arrive in awkward order or unproven, against the Procfile's processes."""

from __future__ import annotations

import io
import threading

import redis
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from conftest import ready_payload
from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_callback
from fluxhook.services import build_services
from fluxhook.store.jobs import JobStore


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


def _blocking_png_route(spy, path: str, color) -> tuple[str, threading.Event, bytes]:
    """A delivery URL that answers only once the test sets the returned event."""
    release = threading.Event()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, "PNG")
    data = out.getvalue()

    def answer():
        release.wait(10)
        return 200, {"Content-Type": "image/png"}, data

    return spy.route(path, body=answer), release, data


def test_a_proven_ready_replaces_an_unproven_one_being_downloaded(api, sim, spy):
    job = api.submit("[pending] [drop] replaced")
    forged_url, release, forged_bytes = _blocking_png_route(spy, "/forged.png", (9, 9, 9))
    api.callback(job["id"], ready_payload(job["bfl_id"], forged_url), secret=None)
    wait_until(lambda: spy.hits, message="the unproven download to start")

    sim.complete(job["bfl_id"])
    genuine = sim.result(job["bfl_id"])["result"]["sample"]
    assert api.callback(job["id"], ready_payload(job["bfl_id"], genuine)).status_code == 200
    release.set()

    done = api.wait_for(job["id"])
    assert done["status"] == "stored", done
    served = api.get(f"/v1/jobs/{job['id']}/image").content
    assert served == sim.image_bytes(job["bfl_id"]) and served != forged_bytes


def _skipped_downloads(api) -> float:
    """How many download attempts found their job gone or changed, from /metrics."""
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "fluxhook_downloads_total" and sample.labels.get("outcome") == "skipped":
                return sample.value
    return 0.0


def test_deleting_a_job_mid_download_leaves_no_image_behind(api, sim, spy, stack):
    from pathlib import Path

    job = api.submit("[pending] deleted while downloading")
    url, release, _ = _blocking_png_route(spy, "/deleted.png", (7, 7, 7))
    api.callback(job["id"], ready_payload(job["bfl_id"], url))
    wait_until(lambda: spy.hits, message="the download to start")
    skipped = _skipped_downloads(api)
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    release.set()
    # The attempt ends 'skipped' once it found the job gone, after writing the file and taking it away again.
    wait_until(lambda: _skipped_downloads(api) > skipped, timeout=20, message="the deleted job's download to end")
    storage = Path(stack.env["STORAGE_URL"].removeprefix("file://"))
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert not any(storage.glob(f"{job['id']}*")) and not any(storage.glob(".partial-*"))
