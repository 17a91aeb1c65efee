"""The /v1 API over HTTP: authentication, validation, listing, tracking, BFL's refusals."""

from __future__ import annotations

import requests

from conftest import API, API_TOKEN
from devtools.processes import wait_until
from helpers import created_since, job_ids


def _error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]


def test_every_v1_call_needs_a_valid_bearer_token(stack):
    for headers in ({}, {"Authorization": "Bearer wrong-token-123"}, {"Authorization": f"Basic {API_TOKEN}"},
                    {"Authorization": "Bearer"}, {"Authorization": f"bearer  {API_TOKEN}x"}):
        for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/job_01M7Z1J863RJ8EJMXB0WTBFPHC"),
                             ("POST", "/v1/jobs/track"), ("DELETE", "/v1/jobs/job_01M7Z1J863RJ8EJMXB0WTBFPHC")):
            response = requests.request(method, stack.base_url + path, headers=headers, timeout=10)
            assert _error(response, 401)["code"] == "unauthorized"


def test_second_configured_token_is_accepted(stack):
    assert API(stack.base_url, token="second-token-abcdef").get("/v1/jobs").status_code == 200


def test_flask_errors_are_json_too(api):
    assert _error(api.get("/no/such/path"), 404)["code"] == "not_found"
    assert _error(api.request("PUT", "/v1/jobs"), 405)["code"] == "method_not_allowed"
    assert _error(api.get("/v1/jobs/job_01M7Z1J863RJ8EJMXB0WTBFPHC"), 404)["code"] == "not_found"
    assert _error(api.get("/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404)["code"] == "not_found"


def test_bad_submissions_are_refused_and_create_nothing(api, sim):
    before = job_ids(api)
    bad_bodies = [
        b"not json",
        b"[1, 2]",
        {"input": {"prompt": "x"}},
        {"model": 42, "input": {"prompt": "x"}},
        {"model": "flux-2-pro"},
        {"model": "flux-2-pro", "input": {}},
        {"model": "flux-2-pro", "input": "a prompt"},
        {"model": "flux-2-pro", "input": {"prompt": "x", "webhook_url": "https://evil.example/"}},
        {"model": "flux-2-pro", "input": {"prompt": "x"}, "metadata": ["not", "an", "object"]},
        {"model": "flux-2-pro", "input": {"prompt": "x"}, "metadata": {"blob": "x" * 20_000}},
    ]
    for body in bad_bodies:
        kwargs = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes) else {"json": body}
        assert _error(api.post("/v1/jobs", **kwargs), 400)["code"] == "invalid_request"
    assert created_since(api, before) == []
    assert sim.stats()["submitted"] == 0


def test_bfl_validation_error_is_a_400_and_leaves_no_job(api, sim):
    before = job_ids(api)
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"width": 512}})  # no prompt: BFL says 422
    assert _error(response, 400)["code"] == "bfl_rejected"
    assert created_since(api, before) == []


def test_no_credits_is_a_402_and_leaves_no_job(api, sim):
    sim.settings(credits=0)
    before = job_ids(api)
    answer = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}})
    assert _error(answer, 402)["code"] == "insufficient_credits"
    assert created_since(api, before) == []


def test_bfl_unreachable_is_a_502(redis_server, simulator, spy, tmp_path):
    from conftest import service_env
    from devtools.processes import free_port
    from fluxhook.core.config import Config
    from receiver import create_app

    env = service_env(redis_server, simulator, spy.port, 8000, BFL_API_BASE=f"http://127.0.0.1:{free_port()}",
                      STORAGE_URL=f"file://{tmp_path}")
    client = create_app(Config.from_env(env)).test_client()
    response = client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}},
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "bfl_unavailable"


def test_listing_is_newest_first_with_a_cursor_and_a_status_filter(api, sim):
    ids = [api.submit(f"[pending] picture {n}")["id"] for n in range(5)]
    first = api.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    second = api.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in second["jobs"]] == ids[::-1][2:4]

    submitted = api.get("/v1/jobs", params={"status": "submitted", "limit": 100}).json()["jobs"]
    assert set(ids) <= {j["id"] for j in submitted}
    assert all(j["status"] == "submitted" for j in submitted)
    stored = api.get("/v1/jobs", params={"status": "stored", "limit": 100}).json()["jobs"]
    assert not set(ids) & {j["id"] for j in stored}


def test_listing_refuses_bad_parameters(api):
    for params in ({"status": "bogus"}, {"limit": "0"}, {"limit": "101"}, {"limit": "ten"},
                   {"cursor": "not-a-cursor"}, {"cursor": "job_../../x"}):
        assert _error(api.get("/v1/jobs", params=params), 400)["code"] == "invalid_request"


def test_track_creates_once_and_returns_the_same_job_after(api, sim):
    first = api.track("external-task-1", model="flux-2-pro", metadata={"order": 7})
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["status"] == "submitted" and job["bfl_id"] == "external-task-1" and job["metadata"] == {"order": 7}
    again = api.track("external-task-1")
    assert again.status_code == 200 and again.json()["id"] == job["id"]


def test_track_refuses_bad_bodies(api):
    for body in ({}, {"bfl_id": ""}, {"bfl_id": "../x"}, {"bfl_id": 12}, {"bfl_id": "ok", "polling_url": "ftp://x"},
                 {"bfl_id": "ok", "model": "BAD MODEL"}, {"bfl_id": "ok", "metadata": "x"}):
        assert _error(api.post("/v1/jobs/track", json=body), 400)["code"] == "invalid_request"
    assert all(j["bfl_id"] != "ok" for j in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"])


def test_delete_removes_the_job(api, sim):
    job = api.submit("[pending] to delete")
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    # BFL still runs its task: the job is canceled now, holding its slot, and erased once BFL ends the task.
    assert api.job(job["id"])["status"] == "canceled"
    sim.complete(job["bfl_id"])
    wait_until(lambda: api.get(f"/v1/jobs/{job['id']}").status_code == 404, timeout=30, message="the job erased")
    assert _error(api.get(f"/v1/jobs/{job['id']}"), 404)["code"] == "not_found"
    assert _error(api.delete(f"/v1/jobs/{job['id']}"), 404)["code"] == "not_found"
    assert job["id"] not in job_ids(api)


def test_health_endpoints(stack):
    assert requests.get(stack.base_url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(stack.base_url + "/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    metrics = requests.get(stack.base_url + "/metrics", timeout=5, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert metrics.status_code == 200 and 'fluxhook_jobs{status="stored"}' in metrics.text


def test_a_submission_bfl_answers_429_waits_queued_and_goes_out_later(api, sim):
    sim.settings(max_active=1)
    blocker = api.submit("[pending] holds the only slot")
    waiting = api.submit("waits for the slot")
    assert waiting["status"] == "queued" and waiting["bfl_id"] is None
    sim.complete(blocker["bfl_id"])
    stored = api.wait_for(waiting["id"], timeout=30)
    assert stored["status"] == "stored", stored
    assert stored["bfl_id"] and stored["source"] == "webhook"


def test_a_queued_job_fails_when_bfl_then_says_no_credits(api, sim):
    sim.settings(max_active=1)
    blocker = api.submit("[pending] holds the only slot")
    waiting = api.submit("waits for the slot")
    assert waiting["status"] == "queued"
    sim.settings(credits=0)
    sim.complete(blocker["bfl_id"])
    failed = api.wait_for(waiting["id"], timeout=30)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "insufficient_credits"
