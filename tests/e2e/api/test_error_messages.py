"""The mistakes a newcomer makes, against the real service: each answer names the field or header, the
limit, and what to do, and changes nothing.

The session stack (the Procfile's gunicorn and worker, the simulator standing in for BFL) answers
every one; the messages are read as a user reads them.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
import requests

from conftest import API_TOKEN
from fluxhook.core.job import MAX_PROMPT_CHARS
from helpers import created_since, job_ids
from receiver.request_assembly import MAX_REQUEST_BYTES

JSON = {"Content-Type": "application/json"}


def _refusal(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


@pytest.mark.parametrize(("body", "named"), [
    ({"model": "flux-2-pro", "prompt": "a red fox"}, "'prompt'"),
    ({"model": "flux-2-pro", "prompt": "a red fox", "width": 1024}, "'prompt', 'width'"),
])
def test_a_bfl_request_at_the_top_level_is_pointed_under_input(api, body, named):
    before = job_ids(api)
    message = _refusal(api.post("/v1/jobs", json=body), 400, "unknown_field")
    assert message.startswith(f"unknown field{'s' if ',' in named else ''} {named}: BFL's request fields go under 'input'")
    assert '"input": {"prompt": ' in message  # an example to copy
    assert created_since(api, before) == []


def test_an_empty_input_shows_the_shape_to_send(api):
    message = _refusal(api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {}}), 400, "invalid_request")
    assert "'input' must be a non-empty JSON object" in message and '"input": {"prompt": ' in message


def test_invalid_json_says_where_without_talk_of_nan(api):
    body = b'{"model": "flux-2-pro", "input": {"prompt": "a red fox",}}'
    message = _refusal(api.post("/v1/jobs", data=body, headers=JSON), 400, "invalid_request")
    assert message.startswith("the body is not valid JSON: ")
    assert "line 1, column 57" in message and "trailing comma" in message
    assert "NaN" not in message


def test_nan_is_named_as_what_json_lacks(api):
    body = b'{"model": "flux-2-pro", "input": {"prompt": "x", "guidance": NaN}}'
    message = _refusal(api.post("/v1/jobs", data=body, headers=JSON), 400, "invalid_request")
    assert message == "NaN is not a JSON number: send a number or null"


def test_bfls_422_reads_as_fields_and_what_is_wrong(api):
    before = job_ids(api)
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"width": 1024}})
    message = _refusal(response, 400, "bfl_rejected")
    assert message == ("BFL's schema for flux-2-pro refuses the input (422): prompt: Field required: "
                       "fix these fields of 'input' (nothing was created or sent)")
    assert "[{" not in message and "'loc'" not in message
    assert created_since(api, before) == []


def test_a_body_without_its_content_type_says_which_header(api):
    # As curl -d sends it without -H 'Content-Type: application/json'.
    response = api.post("/v1/jobs", data=b'{"model": "flux-2-pro", "input": {"prompt": "x"}}',
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert _refusal(response, 400, "invalid_request") == (
        "send the body as JSON with the header 'Content-Type: application/json' "
        "(this request's Content-Type: application/x-www-form-urlencoded)")


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token-9876", API_TOKEN])
def test_a_missing_or_wrong_token_says_which_header_and_where_tokens_come_from(stack, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{stack.base_url}/v1/jobs", headers=headers, timeout=10)
    message = _refusal(response, 401, "unauthorized")
    assert "API_TOKENS" in message and "app key" in message  # where tokens come from
    if authorization and authorization.startswith("Bearer "):
        assert "not recognised" in message  # a token was sent the right way: the token is what to check
    else:
        assert "Authorization: Bearer" in message


@pytest.mark.parametrize("model", ["FLUX 2 Pro", "FLUX-2-PRO", "flux_2_pro"])
def test_any_name_the_catalog_does_not_know_is_an_unknown_model_naming_the_nearest(api, model):
    response = api.post("/v1/jobs", json={"model": model, "input": {"prompt": "x"}})
    assert "did you mean flux-2-pro" in _refusal(response, 400, "unknown_model")


@pytest.mark.parametrize("model", [None, "", "  ", 3, ["flux-2-pro"]])
def test_a_model_that_is_no_name_at_all_says_what_one_looks_like(api, model):
    response = api.post("/v1/jobs", json={"model": model, "input": {"prompt": "x"}})
    assert "'model'" in (message := _refusal(response, 400, "invalid_request")) and "flux-2-pro" in message


def test_a_body_over_the_limit_names_the_limit(stack):
    # Announced, not sent: the answer comes from the length alone, before a byte of the body is read.
    address = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest("POST", "/v1/jobs")
        connection.putheader("Authorization", f"Bearer {API_TOKEN}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 413
    message = json.loads(body)["error"]["message"]
    assert "256 MiB" in message and "capacity" not in message
    assert "image URLs" in message  # what to do instead


def test_a_prompt_longer_than_kept_is_sent_whole_and_said_so(api, sim):
    prompt = "a red fox in snow, " * 150  # 2,850 characters
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["warnings"] == [f"input.prompt is {len(prompt):,} characters: BFL gets all of it, but the job's "
                               f"'prompt' keeps only the first {MAX_PROMPT_CHARS:,}"]
    assert job["prompt"] == prompt[:MAX_PROMPT_CHARS]
    assert sim.task(job["bfl_id"])["prompt"] == prompt  # BFL got it whole
    assert "warnings" not in api.job(job["id"])  # a word for the submitter, not part of the record
    short = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "a red fox"}}).json()
    assert "warnings" not in short


def test_the_wrong_file_of_a_job_names_the_right_one(api):
    job = api.wait_for(api.submit("a red fox")["id"], "stored")
    message = _refusal(api.get(f"/v1/jobs/{job['id']}/video"), 410, "gone")
    assert f"/v1/jobs/{job['id']}/image" in message


def test_unknown_paths_and_methods_say_where_to_look(api):
    assert "/openapi.json" in _refusal(api.get("/v1/jobs/job_x/thumbnail/large"), 404, "not_found")
    # /v1/<name> is BFL's path for a model: a slip of fluxhook's own path is named, in BFL's shape, whatever the method.
    slip = api.get("/v1/job")
    assert (slip.status_code, slip.json()) == (404, {"detail": "Not Found: did you mean /v1/jobs?"})
    message = _refusal(api.request("PUT", "/v1/jobs"), 405, "method_not_allowed")
    assert message.startswith("PUT is not allowed here; this path takes ") and "POST" in message
