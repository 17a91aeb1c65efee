"""Strict input over real HTTP (issue 95 point 3): a field of ``input`` that the catalog's schema for the model does not
know is named in the 202's ``warnings`` (a batch's: ``{"index", "field", "message"}`` per item) and sent as given; it
is refused 400 where the request asks for strict input (``Prefer: handling=strict``) or its key does (``strict_input``,
set and cleared through /v1/keys); BFL's drop-in route answers as BFL. A batch line naming a model is told that a
batch has one model, and the nearest names to a misspelt one. An in-process web app on a Redis database of its own."""

from __future__ import annotations

import json

import pytest

from conftest import API
from helpers import wait_until
from key_helpers import make_key

DB = 15  # the in-process app's own Redis database (no worker of the stack uses it)
STRICT = {"Prefer": "handling=strict"}
COLOURED = {"prompt": "[pending] a fox", "colour": "natural"}


@pytest.fixture()
def admin(local_app) -> API:
    api, _ = local_app(DB)
    return api


def _jobs(api: API) -> list[dict]:
    return api.get("/v1/jobs").json()["jobs"]


def test_a_jobs_unknown_field_is_a_warning_of_its_202_and_strict_input_refuses_it(admin):
    made = admin.post("/v1/jobs", json={"model": "flux-2-pro", "input": COLOURED})
    assert made.status_code == 202, made.text
    (warning,) = made.json()["warnings"]
    assert warning.startswith("input.colour: flux-2-pro's request, as fluxhook's catalog knows it, has no field "
                              "'colour'") and "sent as given" in warning

    refused = admin.post("/v1/jobs", json={"model": "flux-2-pro", "input": COLOURED}, headers=STRICT)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "unknown_field" and error["message"].startswith("input.colour: ")
    assert [job["id"] for job in _jobs(admin)] == [made.json()["id"]]  # the refused one made nothing
    # Another preference asks for nothing.
    assert "warnings" in admin.post("/v1/jobs", json={"model": "flux-2-pro", "input": COLOURED},
                                    headers={"Prefer": "handling=lenient"}).json()


def test_a_keys_strict_input_refuses_it_on_fluxhooks_routes_and_bfls_route_answers_as_bfl(admin):
    created, key = make_key(admin, strict_input=True)
    assert created["strict_input"] is True
    refused = key.post("/v1/jobs", json={"model": "flux-2-pro", "input": COLOURED})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_field", refused.text
    # BFL's drop-in: no warning and no refusal of fluxhook's; BFL's own answer.
    dropped = key.post("/v1/flux-2-pro", json=COLOURED)
    assert dropped.status_code == 200 and set(dropped.json()) == {"id", "polling_url", "cost", "input_mp",
                                                                  "output_mp"}, dropped.text

    changed = admin.request("PATCH", f"/v1/keys/{created['id']}", json={"strict_input": None})
    assert changed.status_code == 200 and changed.json()["strict_input"] is False, changed.text
    # A web process reads a key's change within a second.
    wait_until(lambda: key.post("/v1/jobs", json={"model": "flux-2-pro", "input": COLOURED}).status_code == 202,
               timeout=5, message="the key's change to be read")
    bad = admin.request("PATCH", f"/v1/keys/{created['id']}", json={"strict_input": "yes"})
    assert bad.status_code == 400 and "'strict_input' must be true" in bad.json()["error"]["message"]


def test_a_batchs_202_names_each_lines_unknown_fields_and_strict_input_refuses_those_lines(admin):
    lines = [{"input": {"prompt": "[pending] 0"}}, {"input": COLOURED}, {"input": {"prompt": "[pending] 2", "sed": 2}}]
    ndjson = "\n".join(json.dumps(line) for line in lines)
    made = admin.post("/v1/batches", data=ndjson, params={"model": "flux-2-pro"},
                      headers={"Content-Type": "application/x-ndjson"})
    assert made.status_code == 202, made.text
    warnings = made.json()["warnings"]
    assert [(w["index"], w["field"]) for w in warnings] == [(1, "input.colour"), (2, "input.sed")]
    assert "did you mean 'seed'?" in warnings[1]["message"]
    assert "warnings" not in admin.get(f"/v1/batches/{made.json()['id']}").json()  # its creation's answer only

    refused = admin.post("/v1/batches", json={"model": "flux-2-pro", "items": lines}, headers=STRICT)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_items" and [(p["index"], p["field"]) for p in error["items"]] == [
        (1, "input.colour"), (2, "input.sed")]
    assert len(admin.get("/v1/batches").json()["batches"]) == 1


def test_a_batch_line_with_a_model_is_told_a_batch_has_one_and_the_nearest_names(admin):
    ndjson = "\n".join([json.dumps({"input": {"prompt": "a"}}), json.dumps({"model": "flux-2-prp",
                                                                          "input": {"prompt": "b"}})])
    refused = admin.post("/v1/batches", data=ndjson, params={"model": "flux-2-pro"},
                         headers={"Content-Type": "application/x-ndjson"})
    assert refused.status_code == 400, refused.text
    (problem,) = refused.json()["error"]["items"]
    assert (problem["index"], problem["field"]) == (1, "model")
    assert "a batch has one model" in problem["message"] and "?model=" in problem["message"]
    assert "--model" in problem["message"] and "did you mean flux-2-pro" in problem["message"]
