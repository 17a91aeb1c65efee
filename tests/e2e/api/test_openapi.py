"""The OpenAPI document: served as kept in the repo (a valid document: tests/unit/receiver/test_openapi.py), and the
running API fuzzed against it.

Property-based: schemathesis generates requests for every documented operation, valid and
invalid ones, and sends them over real HTTP to the session stack. No answer may be a 5xx,
and every answer must use a documented status code, content type and body schema.

The tests at the end cover inputs schemathesis does not generate (JSON's non-finite numbers,
lone UTF-16 surrogates, deep nesting): each once gave a 5xx or invalid JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API, API_TOKEN, STATIC_SECRET
from devtools.processes import ROOT

DOCUMENT = ROOT / "receiver" / "openapi.json"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, ignored_auth]
JSON = {"Content-Type": "application/json"}

# Hypothesis keeps caches (constants, unicode tables) under its home directory, by default
# ./.hypothesis: keep them out of the repository. The example database is off altogether.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fluxhook-hypothesis")

# Bounded so this file runs in well under a minute on two cores; a live server makes the timing checks flaky.
FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])

# The document as kept in the repo; the first test shows that it is exactly what the service serves.
schema = schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture(scope="module")
def made_jobs(stack):
    """Ids of the jobs the fuzzing creates; deleted afterwards so later tests see a tidy store."""
    ids: list[str] = []
    yield ids
    api = API(stack.base_url)
    for job_id in ids:
        api.delete(f"/v1/jobs/{job_id}")


def _new_jobs(api: API, before: set[str]) -> list[dict]:
    return [j for j in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"] if j["id"] not in before]


def test_served_document_is_the_file_in_the_repo(stack):
    response = requests.get(stack.base_url + "/openapi.json", timeout=10)  # no bearer token needed
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == DOCUMENT.read_bytes()


def test_document_names_every_route_of_the_app(stack):
    from fluxhook.core.config import Config
    from receiver import create_app

    app = create_app(Config.from_env(stack.env))
    def documented_path(rule: str) -> str:
        return (rule.replace("<job_id>", "{id}").replace("<key_id>", "{id}").replace("<message_id>", "{id}")
                .replace("<batch_id>", "{id}").replace("<end_user:end_user>", "{end_user}")
                .replace("<token>", "{token}")
                .replace("<bfl_model:model>", "{model}"))

    routes = {(documented_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules()
              # The dashboard is a browser UI, not part of the documented API.
              if rule.endpoint != "static" and not rule.endpoint.startswith("dashboard.")
              # BFL's other paths (its account routes) answer BFL's 404: no operation of fluxhook's.
              and rule.endpoint != "bfl_compat.other_path"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in json.loads(DOCUMENT.read_text())["paths"].items()
                  for method in item if method != "parameters"}
    assert documented == routes


# Streams never end of themselves (tests/e2e/jobs/test_events*.py read them).
@schema.exclude(operation_id=["streamJobEvents", "streamEvents", "streamBatchEvents"]).parametrize()
@FUZZ
def test_api_conforms_to_its_document(case, stack, made_jobs):
    """Every operation, with the bearer token: webhooks without a valid token or secret must refuse with a 4xx."""
    response = case.call(base_url=stack.base_url, headers=AUTH, timeout=15)
    # The coverage phase also probes undocumented methods (OPTIONS, PUT, ...): only a real POST makes a job.
    if (response.request.method == "POST" and case.operation.method == "post"
            and case.operation.path in ("/v1/jobs", "/v1/jobs/track", "/v1/{model}")
            and response.status_code in (200, 201, 202)):
        made_jobs.append(response.json()["id"])
    case.validate_response(response, checks=CHECKS, headers=AUTH)
    if case.operation.path.startswith("/webhooks/") and response.request.method == "POST":
        # Generated tokens are never ones fluxhook issued and the static URL needs the secret: always refused.
        assert 400 <= response.status_code < 500, (response.status_code, response.text)


@schema.include(operation_id="staticCallback").parametrize()
@FUZZ
def test_proven_static_callbacks_conform_to_the_document(case, stack):
    """Callbacks that prove BFL_WEBHOOK_SECRET reach the parser and the store: still never a 5xx."""
    if isinstance(case.body, dict):
        # Task ids no job tracks (the fuzzing above tracks ids too): these callbacks are kept, never applied.
        for key in ("id", "task_id"):
            if isinstance(case.body.get(key), str):
                case.body[key] = "fuzz-static-" + case.body[key]
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-bfl-signature"}
    headers = {"X-Webhook-Secret": STATIC_SECRET}
    response = case.call(base_url=stack.base_url, headers=headers, timeout=15)
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_a_stored_job_and_its_image_match_the_document(api, sim, stack):
    """What the fuzzing cannot reach: a stored job's image, by bearer token, by signed URL, and revalidated."""
    job = api.wait_for(api.submit("a lighthouse")["id"], "stored")
    checks = [c for c in CHECKS if c is not ignored_auth]  # the signed URL is a second, equal kind of auth
    show, image = schema["/v1/jobs/{id}"]["GET"], schema["/v1/jobs/{id}/image"]["GET"]
    show.Case(path_parameters={"id": job["id"]}, headers=AUTH).call_and_validate(
        base_url=stack.base_url, checks=checks)
    by_bearer = image.Case(path_parameters={"id": job["id"]}, headers=AUTH)
    response = by_bearer.call_and_validate(base_url=stack.base_url, checks=checks)
    assert response.status_code == 200 and len(response.content) == job["image"]["size"]
    token = job["image"]["url"].partition("?token=")[2]
    by_url = image.Case(path_parameters={"id": job["id"]}, query={"token": token})
    assert by_url.call_and_validate(base_url=stack.base_url, checks=checks).status_code == 200
    cached = image.Case(path_parameters={"id": job["id"]}, headers={**AUTH, "If-None-Match": f'"{job["image"]["sha256"]}"'})
    assert cached.call_and_validate(base_url=stack.base_url, checks=checks).status_code == 304
    api.delete(f"/v1/jobs/{job['id']}")


# --- Inputs the fuzzer does not generate, each once a 5xx or invalid JSON -----------------------------------

@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/track"])
def test_too_deeply_nested_body_is_a_400(api, path):
    response = api.post(path, data=b"[" * 100_000, headers=JSON)
    assert response.status_code == 400, response.text


def test_input_too_deep_to_send_leaves_no_job(api, sim):
    sim.settings(max_active=1000)  # the accepted ones stay pending: no 429, so no job waits as queued
    before = {j["id"] for j in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]}
    answers = {}
    try:
        # The depth where json.loads still works but sending it to BFL fails depends on the stack depth.
        for depth in range(940, 1001):
            body = (b'{"model": "flux-2-pro", "input": {"prompt": "[pending] deep", "x": '
                    + b"[" * depth + b"]" * depth + b"}}")
            answers[depth] = api.post("/v1/jobs", data=body, headers=JSON).status_code
        left_behind = [j for j in _new_jobs(api, before) if j["status"] == "queued"]
        assert left_behind == [], {d: s for d, s in answers.items() if s != 202}
    finally:
        for job in _new_jobs(api, before):
            api.delete(f"/v1/jobs/{job['id']}")


def test_non_finite_number_in_input_is_a_400(api, sim):
    response = api.post("/v1/jobs", data=b'{"model": "flux-2-pro", "input": {"prompt": "x", "seed": NaN}}',
                        headers=JSON)
    if response.status_code == 202:  # queued behind a paused pool: it would fail at BFL later
        api.delete(f"/v1/jobs/{response.json()['id']}")
    assert response.status_code == 400, response.text


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_number_in_metadata_is_refused_or_valid_json(api):
    response = api.post("/v1/jobs/track", data=b'{"bfl_id": "openapi-bug-infinity", "metadata": {"a": Infinity}}',
                        headers=JSON)
    try:
        if response.status_code != 400:
            _strict_json(response.text)
            _strict_json(api.get("/v1/jobs", params={"limit": 5}).text)
    finally:
        if response.status_code in (200, 201):
            api.delete(f"/v1/jobs/{response.json()['id']}")


def test_lone_surrogate_in_polling_url_is_a_400(api):
    response = api.post("/v1/jobs/track",
                        data=b'{"bfl_id": "openapi-bug-surrogate", "polling_url": "https://\\ud800.example/"}',
                        headers=JSON)
    assert response.status_code == 400, response.text


def test_lone_surrogate_in_callback_id_is_a_400(stack):
    response = requests.post(stack.base_url + "/webhooks/bfl", data=b'{"id": "\\ud800", "status": "Pending"}',
                             headers={**JSON, "X-Webhook-Secret": STATIC_SECRET}, timeout=10)
    assert response.status_code == 400, response.text
