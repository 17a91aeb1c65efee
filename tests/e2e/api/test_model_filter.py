"""``GET /v1/jobs?model=`` (alone and with ``status``): read from an index of each model's jobs kept by the
create and delete scripts, never by scanning jobs; a name no catalog model and no job has is ``unknown_model``, as
``POST /v1/jobs`` answers it; over HTTP through the Procfile's processes. The index in Redis:
tests/unit/store/test_jobs_by_model.py."""

from __future__ import annotations

import uuid

import pytest

from conftest import API
from devtools.processes import wait_until
from helpers import assert_error, job_id_pages
from key_helpers import make_key


def _ids(api: API, **params) -> list[str]:
    return [job["id"] for job in api.get("/v1/jobs", params={"limit": 100, **params}).json()["jobs"]]


def test_the_list_of_one_model_newest_first_page_by_page(api, sim):
    a, b = "flux-filter-a", "flux-filter-b"
    made = [api.submit(f"[pending] filter {n}", model=(a, b)[n % 3 == 0])["id"] for n in range(9)]
    of_a = [job_id for n, job_id in enumerate(made) if n % 3 != 0][::-1]
    assert _ids(api, model=a) == of_a
    assert _ids(api, model=b) == [job_id for n, job_id in enumerate(made) if n % 3 == 0][::-1]
    assert job_id_pages(api, model=a, limit=4) == [of_a[:4], of_a[4:]]
    assert all(job["model"] == a for job in api.get("/v1/jobs", params={"model": a}).json()["jobs"])
    assert _ids(api, model=a, to="2000-01-01") == []  # a known model with no job in range: an empty page


def test_a_model_no_catalog_and_no_job_has_is_unknown_model_naming_the_nearest_as_a_submission_is(api, sim):
    listed = assert_error(api.get("/v1/jobs", params={"model": "flux-9"}), 400, "unknown_model")
    submitted = assert_error(api.post("/v1/jobs", json={"model": "flux-9", "input": {"prompt": "x"}}), 400,
                             "unknown_model")
    assert listed == submitted
    assert listed["message"].startswith("'flux-9' is not a model fluxhook knows: did you mean flux-pro or ")


def test_a_tracked_tasks_model_the_catalog_lacks_still_lists_its_jobs_for_whoever_has_them(api):
    model = f"flux-elsewhere-{uuid.uuid4().hex[:8]}"
    tracked = api.track(f"task-{uuid.uuid4()}", model=model)
    assert tracked.status_code == 201, tracked.text
    assert _ids(api, model=model) == [tracked.json()["id"]]
    # An app key has no job of it: to the key the name is unknown. A catalog model it has no job of is an empty page.
    _, app = make_key(api)
    assert_error(app.get("/v1/jobs", params={"model": model}), 400, "unknown_model")
    assert _ids(app, model="flux-2-pro") == []


def test_model_and_status_together(api, sim, spy):
    model = "flux-filter-both"
    pending = [api.submit(f"[pending] both {n}", model=model)["id"] for n in range(5)]
    done = [api.submit(f"both done {n}", model=model)["id"] for n in range(3)]
    for job_id in done:
        assert api.wait_for(job_id)["status"] == "stored"
    assert _ids(api, model=model, status="stored") == done[::-1]
    assert _ids(api, model=model, status="submitted") == pending[::-1]
    assert sum(job_id_pages(api, model=model, status="submitted", limit=2), []) == pending[::-1]
    assert _ids(api, model=model, status="failed") == []


def test_a_deleted_job_leaves_its_models_list(api, sim):
    model = "flux-filter-deleted"
    kept, gone = (api.submit(f"[pending] {name}", model=model) for name in ("kept", "gone"))
    assert api.delete(f"/v1/jobs/{gone['id']}").status_code == 204
    sim.complete(gone["bfl_id"])  # erased once BFL ends its task
    wait_until(lambda: _ids(api, model=model) == [kept["id"]], timeout=30, message="the deleted job off the list")


@pytest.mark.parametrize("model", ["Flux Pro", "../etc", "x" * 65, "flux_2"])
def test_a_model_that_cannot_be_one_is_a_400(api, model):
    assert "model must be a BFL model name" in assert_error(api.get("/v1/jobs", params={"model": model}), 400,
                                                            "invalid_request")["message"]


def test_an_empty_model_means_no_filter(api, sim):
    job = api.submit("[pending] unfiltered")
    assert job["id"] in _ids(api, model="")
