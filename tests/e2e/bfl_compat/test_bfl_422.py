"""BFL's 422 up front (docs/bfl-compatible.md, docs/models.md): a body the model's schema refuses answers BFL's 422 at
``POST /v1/{model}`` and 400 at ``POST /v1/jobs`` before anything exists or counts (no job, no task at BFL, the key's
minute and day untouched, its Idempotency-Key still free), with or without Redis replicas (REDIS_MIN_REPLICAS=1, where
nothing is sent within the request); unknown fields BFL may take still reach it; a FLUX 3 video costs what BFL charges;
a 64-bit seed is kept exactly. In-process web apps on the suite's Redis and simulator (a real replica attached for the
replicated half); the seed through the Procfile's stack."""

from __future__ import annotations

import uuid

import pytest
import redis

from fluxhook.store.keys import KEYS
from helpers import assert_error, replica_of, sign_in
from key_helpers import make_key

DB = 15  # the in-process apps' own Redis database (no worker of the stack uses it)
REPLICATED = {"REDIS_MIN_REPLICAS": "1", "REDIS_WAIT_MS": "2000"}
WIDTH_REFUSED = [{"loc": ["body", "width"], "msg": "Input should be a valid integer, unable to parse string as an "
                  "integer", "type": "int_parsing", "input": "big"}]


@pytest.fixture(scope="module")
def replica(redis_server):
    with replica_of(redis_server) as server:
        yield server


@pytest.fixture(params=["direct", "replicated"])
def admin(request, local_app, sim):
    """An app that submits within the request, and one that never does (replicas required)."""
    if request.param == "replicated":
        request.getfixturevalue("replica")
    api, _ = local_app(DB, **(REPLICATED if request.param == "replicated" else {}))
    api.replicated = request.param == "replicated"
    return api


def test_a_body_bfl_refuses_answers_its_422_and_changes_nothing(admin, sim):
    created, app = make_key(admin, requests_per_minute=2, daily_credits=7)
    drop_in_key, jobs_key = f"k-{uuid.uuid4()}", f"k-{uuid.uuid4()}"
    bad = {"prompt": "x", "width": "big"}
    for _ in range(3):  # more than the key's minute allows: none of them counts
        refused = app.post("/v1/flux-2-pro", json=bad, headers={"Idempotency-Key": drop_in_key})
        assert (refused.status_code, refused.json()) == (422, {"detail": WIDTH_REFUSED})
        error = assert_error(app.post("/v1/jobs", json={"model": "flux-2-pro", "input": bad},
                                      headers={"Idempotency-Key": jobs_key}), 400, "bfl_rejected")
        assert "width: Input should be a valid integer" in error["message"] and "422" in error["message"]
    assert app.get("/v1/jobs").json()["jobs"] == []
    assert sim.stats()["submitted"] == 0
    key = admin.get(f"/v1/keys/{created['id']}").json()
    assert (key["spent_today"], key["jobs_today"], key["active"], key["queued"]) == (0, 0, 0, 0)

    # The same keys with a body BFL takes: acted on (not a replay), within the key's untouched minute and day
    # (two flux-2-pro at 3 credits reserve 6 of its 7).
    good = {"prompt": "a fox", "width": 1024}
    taken = app.post("/v1/flux-2-pro", json=good, headers={"Idempotency-Key": drop_in_key})
    assert taken.status_code == 200, taken.text
    assert "Idempotent-Replayed" not in taken.headers
    assert taken.json()["cost"] == (None if admin.replicated else 3.0)  # with replicas a worker sends it
    accepted = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": good}, headers={"Idempotency-Key": jobs_key})
    assert accepted.status_code == 202, accepted.text
    assert app.post("/v1/jobs", json={"model": "flux-2-pro", "input": good}).status_code == 429
    assert len(app.get("/v1/jobs").json()["jobs"]) == 2


def test_every_refused_field_is_named_in_bfls_order(admin, sim):
    refused = admin.post("/v1/flux-3-video", json={"prompt": "a boat", "duration": 3, "fps": 24})
    assert refused.status_code == 422
    assert [(e["loc"], e["type"]) for e in refused.json()["detail"]] == [
        (["body", "mode"], "missing"), (["body", "duration"], "greater_than_equal"), (["body", "fps"], "extra_forbidden")]
    error = assert_error(admin.post("/v1/jobs", json={"model": "flux-3-video", "input": {"prompt": "a boat"}}),
                         400, "bfl_rejected")
    assert "mode: Field required" in error["message"]
    assert admin.get("/v1/jobs").json()["jobs"] == [] and sim.stats()["submitted"] == 0


def test_fields_bfl_may_take_pass_through_to_it(local_app, sim):
    api, _ = local_app(DB)
    body = {"prompt": "a fox", "colour": "red", "new_knob": {"level": 3}, "seed": "42"}
    answered = api.post("/v1/flux-2-pro", json=body)
    assert answered.status_code == 200, answered.text
    task = sim.task(api.job(answered.json()["id"])["bfl_id"])
    assert {"colour", "new_knob", "seed", "prompt"} <= set(task["fields"])


@pytest.mark.parametrize("extra, credits", [({}, 85.0), ({"duration": "auto"}, 85.0), ({"duration": 8}, 136.0),
                                            ({"duration": 5, "resolution": "fhd"}, 145.0)])
def test_a_flux_3_video_costs_what_bfl_charges(local_app, sim, extra, credits):
    api, _ = local_app(DB)
    # Text to video at the length asked; "auto" or none: the simulator makes BFL's shortest, 5 s, at hd's rate.
    answered = api.post("/v1/flux-3-video", json={"mode": "t2v", "prompt": "a paper boat on a stream", **extra})
    assert answered.status_code == 200, answered.text
    assert answered.json()["cost"] == credits
    job = api.job(answered.json()["id"])
    assert job["cost"]["credits"] == credits


@pytest.mark.parametrize("seed", [2**64 - 1, 2**63 + 5])
def test_a_64_bit_seed_is_kept_exactly(stack, api, seed):
    job = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "a seeded fox", "seed": seed}}).json()
    stored = api.wait_for(job["id"], "stored", timeout=30)
    assert stored["seed"] == seed
    assert redis.Redis.from_url(stack.env["REDIS_URL"]).hget(KEYS.job(job["id"]), "seed") == str(seed).encode()
    result = api.get("/v1/get_result", params={"id": job["id"]}).json()["result"]
    assert result["seed"] == seed
    browser, _ = sign_in(api.base_url)
    page = browser.get(f"{api.base_url}/jobs/{job['id']}", timeout=10)
    assert page.status_code == 200 and str(seed) in page.text
