"""Tracking is per key: when two app keys track one BFL task each gets a job of its own, neither learns
that the other tracks it, and no key's track changes another key's job or makes it its own; a task fluxhook itself
submitted for one key is refused (409) to another's track, in words that name nothing of the first. Two tenants, V and X,
each an app key, against the Procfile's web and worker over real HTTP, with BFL answering submissions after about a second.
"""

from __future__ import annotations

import uuid

from helpers import snapshot, wait_sim_ready

from .tenancy_helpers import as_bfl, bfl_sha256, sim_task, static_post, tenants


def test_a_tenant_tracking_another_tenants_task_first_takes_nothing_from_it(api, sim):
    as_bfl(sim)
    v, x = tenants(api)
    task = sim_task(sim, "[pending] V's task, whose id X learned")

    # X tracks V's task before V does.
    x_first = x.track(task["id"], metadata={"by": "x"})
    assert x_first.status_code == 201, x_first.text
    x_job = x_first.json()
    x_before = snapshot(x.job(x_job["id"]))

    # V's own track answers as if V were alone: a job of its own, V's.
    v_answer = v.track(task["id"], metadata={"by": "v"})
    assert v_answer.status_code == 201, v_answer.text
    v_job = v_answer.json()
    assert v_job["id"] != x_job["id"]
    assert (v_job["key_id"], v_job["metadata"]) != (x_job["key_id"], x_job["metadata"])
    assert v_job["metadata"] == {"by": "v"} and v_job["status"] == "submitted"
    # Each key tracking again gets its own job back; neither sees the other's.
    assert v.track(task["id"]).json()["id"] == v_job["id"] and v.track(task["id"]).status_code == 200
    assert x.track(task["id"]).json()["id"] == x_job["id"]
    assert x.get(f"/v1/jobs/{v_job['id']}").status_code == 404 and v.get(f"/v1/jobs/{x_job['id']}").status_code == 404
    # V's track changed nothing of X's job.
    assert snapshot(x.job(x_job["id"])) == x_before

    # BFL finishes the task and calls the static URL: the result reaches every job tracking it.
    sim.complete(task["id"])
    result = wait_sim_ready(sim, task["id"])
    assert static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]}).status_code == 200
    stored_v, stored_x = v.wait_for(v_job["id"]), x.wait_for(x_job["id"])
    assert stored_v["status"] == stored_x["status"] == "stored", (stored_v, stored_x)
    assert stored_v["image"]["sha256"] == stored_x["image"]["sha256"] == bfl_sha256(sim, task["id"])
    assert (stored_v["key_id"], stored_v["metadata"]) == (v_job["key_id"], {"by": "v"})


def test_tracking_a_task_fluxhook_submitted_for_another_tenant_is_refused_naming_nothing_and_stores_nothing(api, sim):
    as_bfl(sim)
    v, x = tenants(api)
    submitted = v.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] V's job"}})
    assert submitted.status_code == 202, submitted.text
    v_job = submitted.json()
    v_before = snapshot(v.job(v_job["id"]))

    # X tracks V's task: refused, in words that name nothing of V, its key or its job.
    on_v = x.track(v_job["bfl_id"])
    assert on_v.status_code == 409, on_v.text
    error = on_v.json()["error"]
    assert error["code"] == "task_not_trackable"
    assert not any(word in on_v.text for word in (v_job["id"], v_job["key_id"], "tenant-v", v_job["bfl_id"]))
    assert x.get("/v1/jobs").json()["jobs"] == []
    # A task nobody knows is tracked as ever, and V's job is as it was; V tracking its own task gets it back.
    assert x.track(f"unknown-{uuid.uuid4()}").status_code == 201
    assert snapshot(v.job(v_job["id"])) == v_before
    assert v.track(v_job["bfl_id"]).json()["id"] == v_job["id"]

    # BFL finishes the task: V's job stores BFL's result through its own URL; X holds nothing of it.
    sim.complete(v_job["bfl_id"])
    stored = v.wait_for(v_job["id"])
    assert stored["status"] == "stored" and stored["image"]["sha256"] == bfl_sha256(sim, v_job["bfl_id"])
    assert stored["attempts"]["webhooks"] == 1 and stored["key_id"] == v_job["key_id"]
    assert v_job["bfl_id"] not in {job["bfl_id"] for job in x.get("/v1/jobs").json()["jobs"]}
