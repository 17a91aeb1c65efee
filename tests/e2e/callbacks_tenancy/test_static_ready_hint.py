"""A Ready on the static callback URL is a hint, never a result: every app that submits its own tasks
through an account holds the account's static secret, so fluxhook downloads only what BFL's own get_result states
for the task, after one poll with the account's key. Two tenants, V and X, each an app key, against the Procfile's
web and worker over real HTTP, with BFL answering submissions after about a second."""

from __future__ import annotations

from conftest import ready_payload
from devtools.processes import wait_until
from helpers import serve_png, snapshot, wait_sim_ready

from .tenancy_helpers import as_bfl, bfl_sha256, polled, sim_task, static_post, tenants


def test_a_tenants_forged_static_ready_never_stores_its_file_in_another_tenants_job(api, sim, spy):
    as_bfl(sim)
    v, _x = tenants(api)
    task = sim_task(sim, "[pending] V's own task, still running at BFL")
    tracked = v.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    job_id = tracked.json()["id"]
    before = snapshot(v.job(job_id))

    # X holds the account's static secret too: it says V's task is Ready, with X's own file.
    forged = static_post(api, ready_payload(task["id"], serve_png(spy, "x-forged-result")))

    assert forged.status_code == 200, forged.text
    assert forged.json()["outcome"] == "confirm_queued"
    checked = wait_until(lambda: (lambda j: j if j["bfl_status"] == "Pending" else None)(polled(v, job_id)),
                         timeout=10, message="BFL's answer to the confirming poll")
    # BFL said Pending: the job is as it was (but for BFL's word and the callback counted), still followed; X's
    # file was never fetched.
    assert snapshot(checked) == {**before, "bfl_status": "Pending", "progress": checked["progress"],
                                 "attempts": {**before["attempts"], "webhooks": 1}}
    assert (checked["status"], checked["image"], checked["source"]) == ("submitted", None, None)
    assert spy.hits == []

    # BFL really finishes the task: V's job stores what BFL made, never X's file.
    sim.complete(task["id"])
    result = wait_sim_ready(sim, task["id"])
    assert static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]}).status_code == 200
    stored = v.wait_for(job_id)
    assert stored["status"] == "stored", stored
    assert stored["image"]["sha256"] == bfl_sha256(sim, task["id"])
    assert spy.hits == []


def test_a_genuine_static_ready_is_applied_after_one_confirming_poll(api, sim, spy):
    as_bfl(sim)
    v, x = tenants(api)
    task = sim_task(sim, "[pending] V's task that BFL finishes")
    job_id = v.track(task["id"]).json()["id"]
    sim.complete(task["id"])
    result = wait_sim_ready(sim, task["id"])
    polls_before = sim.task(task["id"])["polls"]

    answer = static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]})

    assert answer.status_code == 200, answer.text
    assert "job_id" not in answer.json()  # whoever posts to the static URL learns no job's id
    stored = v.wait_for(job_id)
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1 and stored["attempts"]["downloads"] == 1
    # What was downloaded is what BFL's get_result stated, asked with the account's key.
    assert sim.task(task["id"])["polls"] > polls_before
    assert stored["image"]["sha256"] == bfl_sha256(sim, task["id"])
    # X, who holds the same secret, sees nothing of V's job.
    assert x.get(f"/v1/jobs/{job_id}").status_code == 404
