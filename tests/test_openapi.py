"""The OpenAPI document: served as kept in the repo, valid, and the running API fuzzed against it.

Property-based: schemathesis generates requests for every documented operation (valid and
invalid ones) and sends them over real HTTP to the session stack; no answer may be a 5xx,
and every answer must use a documented status code and match its documented schema.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API, API_TOKEN

DOCUMENT = Path(__file__).resolve().parents[1] / "receiver" / "openapi.json"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so the file runs in well under a minute on two cores; the live server makes timing health checks flaky.
FUZZ = settings(max_examples=30, deadline=None, database=None, derandomize=False,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def made_jobs(stack):
    """Ids of the jobs the fuzzing creates; deleted afterwards so later tests see a tidy store."""
    ids: list[str] = []
    yield ids
    api = API(stack.base_url)
    for job_id in ids:
        api.delete(f"/v1/jobs/{job_id}")


def test_served_document_is_the_file_in_the_repo(stack):
    response = requests.get(stack.base_url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == DOCUMENT.read_bytes()
    assert response.json() == json.loads(DOCUMENT.read_text())


def test_document_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(json.loads(DOCUMENT.read_text()))


def test_document_covers_every_route(stack):
    """Every route of the app is documented, and nothing documented is missing from the app."""
    from receiver import create_app
    from fluxhook.config import Config

    documented = set(json.loads(DOCUMENT.read_text())["paths"])
    app_paths = {
        rule.rule.replace("<job_id>", "{id}").replace("<token>", "{token}")
        for rule in create_app(Config.from_env(stack.env)).url_map.iter_rules() if rule.endpoint != "static"
    }
    assert documented == app_paths


# The file in the repo; the first test shows it is exactly what the service serves.
schema = schemathesis.openapi.from_path(DOCUMENT)


@schema.parametrize()
@FUZZ
def test_api_conforms_to_its_document(case, stack, made_jobs):
    response = case.call(base_url=stack.base_url, headers=AUTH, timeout=10)
    # The coverage phase also probes undocumented methods (OPTIONS, PUT, ...): only a real POST makes a job.
    if (response.request.method == "POST" and case.operation.method == "post"
            and case.operation.path in ("/v1/jobs", "/v1/jobs/track") and response.status_code in (200, 201, 202)):
        made_jobs.append(response.json()["id"])
    case.validate_response(response, checks=CHECKS, headers=AUTH)
