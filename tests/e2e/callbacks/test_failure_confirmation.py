"""A job ends failed or moderated only when BFL's own answer says so, through the Procfile's web and
worker processes over real HTTP.

A callback that reports a failure is not proof enough: fluxhook asks BFL with a poll before it
ends the job, so a forged Error or moderation callback cannot end a job that BFL is still running
or has finished. Jobs are submitted with ``[pending]``, ``[drop]`` or ``[error]`` prompts so that
the simulator behaves as each test needs.
"""

from __future__ import annotations

import hashlib

import pytest

from devtools.processes import wait_until
from helpers import assert_error_status, wait_sim_ready


def test_forged_error_callback_does_not_fail_a_pending_task(api, sim):
    job = api.submit("[pending] forged error")

    response = api.callback(job["id"], {"id": job["bfl_id"], "status": "Error",
                                        "error": "Generation failed", "message": "forged"})

    assert response.status_code == 200, response.text
    confirmed = wait_until(lambda: (lambda j: j if j["attempts"]["polls"] >= 1 else None)(api.job(job["id"])),
                           timeout=10, message="the confirmation poll")
    wait_until(lambda: sim.task(job["bfl_id"])["polls"] >= 1, timeout=5, message="BFL to see the poll")
    checked = api.job(job["id"])
    assert checked["status"] == "submitted", checked
    assert checked["bfl_status"] == "Pending"
    assert checked["error"] is None and checked["completed_at"] is None
    assert checked["attempts"]["webhooks"] == 1
    assert confirmed["attempts"]["downloads"] == 0

    # Now BFL really fails the task: its own callback, confirmed by a poll, ends the job.
    sim.complete(job["bfl_id"], "error")
    failed = api.wait_for(job["id"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "bfl_error"
    assert failed["bfl_status"] == "Error"
    assert failed["image"] is None
    assert failed["attempts"]["webhooks"] == 2
    assert failed["attempts"]["polls"] >= 2


def test_forged_moderation_callback_cannot_fail_a_task_that_is_ready(api, sim):
    job = api.submit("[pending] [drop] forged moderation")
    sim.complete(job["bfl_id"])  # Ready at BFL, but its callback is dropped
    assert sim.task(job["bfl_id"])["callback_plan"] == "dropped"
    wait_sim_ready(sim, job["bfl_id"])

    response = api.callback(job["id"], {"id": job["bfl_id"], "status": "Content Moderated"})

    assert response.status_code == 200, response.text
    final = api.wait_for(job["id"])
    assert final["status"] == "stored", final
    assert final["error"] is None
    assert final["bfl_status"] == "Ready"
    assert final["attempts"]["polls"] >= 1
    assert final["image"]["sha256"] == hashlib.sha256(sim.image_bytes(job["bfl_id"])).hexdigest()


@pytest.mark.parametrize("outcome, bfl_status", [
    ("content_moderated", "Content Moderated"),
    ("request_moderated", "Request Moderated"),
])
def test_moderated_task_ends_moderated(api, sim, outcome, bfl_status):
    job = api.submit("[pending] moderated")

    sim.complete(job["bfl_id"], outcome)

    final = api.wait_for(job["id"])
    assert final["status"] == "moderated", final
    assert final["error"]["code"] == "moderated"
    assert final["error"]["message"]
    assert final["bfl_status"] == bfl_status
    assert final["image"] is None
    assert final["attempts"]["webhooks"] >= 1 and final["attempts"]["polls"] >= 1
    assert final["attempts"]["downloads"] == 0


def test_error_prompt_job_fails_by_itself(api, sim):
    job = api.submit("[error] this one fails")

    final = api.wait_for(job["id"])

    assert final["status"] == "failed", final
    assert final["error"]["code"] == "bfl_error"
    assert final["bfl_status"] == "Error"
    assert final["completed_at"] is not None
    assert final["attempts"]["downloads"] == 0
    assert_error_status(api.get(f"/v1/jobs/{job['id']}/image"), 410)
