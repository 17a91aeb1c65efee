"""BFL's tools (``/v1/flux-tools/...``) and FLUX 3 Image through both front doors, over HTTP against the Procfile's
processes and the simulator: a name with a '/' reaches its own endpoint and no other, a tool that refuses
webhook fields gets none and is followed by polling, its result is stored like any other, and BFL's account
routes answer BFL's own 404."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import API, API_TOKEN
from devtools.processes import wait_until
from helpers import stack_on_db

DB = 13
EDIT = "flux-tools/video-edit-v1"


@pytest.fixture(scope="module")
def tools_stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("tools-stack")), DB,
                     BFL_MODEL_LIMITS=f"flux-3-video=2,{EDIT}=3") as running:
        yield running


@pytest.fixture()
def base(tools_stack, sim) -> str:
    sim.settings(any_model=False)  # BFL's own answer to a path it does not serve
    return tools_stack.base_url


def bfl_headers(key: str = API_TOKEN) -> dict:
    return {"accept": "application/json", "x-key": key, "Content-Type": "application/json"}


def raw_post(base: str, path: str, body: bytes = b'{"prompt": "p", "video": "https://e.example/v.mp4"}'):
    """POST ``path`` exactly as written (no client folds '..', '//' or '%2F' away): (status, JSON body)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=bfl_headers())
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_video_edit_by_bfls_own_path_is_sent_without_webhook_polled_and_stored(base, sim):
    submitted = requests.post(f"{base}/v1/{EDIT}", headers=bfl_headers(),
                              json={"video": "https://e.example/clip.mp4", "prompt": "Remove the orange bucket."},
                              timeout=30)
    assert submitted.status_code == 200, submitted.text
    task = submitted.json()
    assert task["cost"] == 45.0  # BFL's $0.03 per output second, the source's length at most 15 s
    job = API(base).job(task["id"])
    assert job["model"] == EDIT
    sent = sim.task(job["bfl_id"])
    assert sent["model"] == EDIT and sent["webhook_url"] is None and not sent["has_webhook_secret"]

    def stored():
        found = API(base).job(task["id"])
        return found if found["status"] in ("stored", "failed", "expired") else None

    done = wait_until(stored, timeout=60, interval=0.2, message="the video edit stored")
    assert done["status"] == "stored" and done["source"] == "poll", done
    assert done["video"]["content_type"] == "video/mp4"
    result = requests.get(task["polling_url"], headers=bfl_headers(), timeout=10).json()
    assert result["status"] == "Ready" and "/video?token=" in result["result"]["sample"]


def test_the_tools_and_flux_3_image_through_v1_jobs(base, sim):
    api = API(base)
    for model, body in ((EDIT, {"video": "https://e.example/clip.mp4", "prompt": "make it dusk"}),
                        ("flux-tools/erase-v1", {"image": "https://e.example/a.png", "mask": "https://e.example/m.png"}),
                        ("flux-3-image", {"prompt": "a fox", "resolution": "2k"})):
        created = api.post("/v1/jobs", json={"model": model, "input": body})
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["model"] == model
        bfl_id = wait_until(lambda job_id=job["id"]: api.job(job_id)["bfl_id"], timeout=30, interval=0.1)
        sent = sim.task(bfl_id)
        assert sent["webhook_url"] is None, model  # these schemas refuse webhook fields: none is sent
    image = api.get("/v1/jobs", params={"model": "flux-3-image"}).json()["jobs"][0]
    assert image["cost"]["credits"] == 10.0  # the 2k class's price
    listed = {m["name"]: m for m in api.get("/v1/models").json()["models"]}
    assert listed[EDIT]["kind"] == "video" and listed[EDIT]["webhook"] is False
    assert listed[EDIT]["price"] == {"rule": "second", "credits": 3.0}
    assert listed["flux-3-image"]["url_life"] == 3600


@pytest.mark.parametrize("path", [
    "/v1/flux-tools/../finetune", "/v1/flux-tools/%2E%2E/finetune", "/v1/flux-tools%2Fvideo-edit-v1",
    "/v1/flux-tools%2F..%2Ffinetune", "/v1//flux-2-pro", "/v1/flux-tools//video-edit-v1", "/v1/flux-tools/",
    "/v1/flux-tools/video-edit-v1/", "/v1/flux-tools/video-edit-v1/extra", "/v1/delete_finetune",
    "/v1/finetune", "/v1/my_finetunes", "/v1/flux-tools/unknown-v9",
])
def test_no_name_reaches_another_bfl_path(base, sim, path):
    status, body = raw_post(base, path)
    assert status in (404, 405), (path, status, body)
    assert body.startswith(b'{"detail":'), (path, body)
    assert sim.stats()["submitted"] == 0


@pytest.mark.parametrize("model", ["flux-tools/../finetune", "flux-tools%2Ffinetune", "flux-tools//video-edit-v1",
                                   "flux-tools/video-edit-v1/x", "../flux-2-pro", "delete_finetune"])
def test_v1_jobs_refuses_such_names_and_sends_nothing(base, sim, model):
    refused = API(base).post("/v1/jobs", json={"model": model, "input": {"prompt": "p"}})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "unknown_model"
    assert sim.stats()["submitted"] == 0


@pytest.mark.parametrize("method, path", [("POST", "/v1/delete_finetune"), ("GET", "/v1/my_finetunes"),
                                          ("GET", "/v1/finetune_details?finetune_id=ft-1")])
def test_bfls_account_routes_answer_bfls_404(base, sim, method, path):
    answered = requests.request(method, f"{base}{path}", headers=bfl_headers(), json={"finetune_id": "ft-1"},
                                timeout=10)
    assert (answered.status_code, answered.json()) == (404, {"detail": "Not Found"})
    assert sim.stats()["submitted"] == 0


def test_a_tool_refuses_a_field_it_does_not_know_as_bfl_does(base, sim):
    refused = requests.post(f"{base}/v1/{EDIT}", headers=bfl_headers(),
                            json={"video": "https://e.example/clip.mp4", "prompt": "p", "seed": 3}, timeout=30)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "seed"]


def test_models_shows_the_limits_in_force_after_bfl_model_limits(base):
    listed = {m["name"]: m for m in API(base).get("/v1/models").json()["models"]}
    assert listed["flux-3-video"]["max_active"] == 2  # the catalog's 5, overridden
    assert listed[EDIT]["max_active"] == 3  # a name with a '/' in BFL_MODEL_LIMITS
    # No limit of its own here: the account's, BFL_MAX_ACTIVE (the suite's).
    assert listed["flux-kontext-max"]["max_active"] == listed["flux-2-pro"]["max_active"] == 10_000
