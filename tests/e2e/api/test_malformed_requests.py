"""Hostile and malformed requests to the /v1 API and the web process, over real HTTP on 127.0.0.1:
bodies nested too deep or not strict JSON, odd job ids and paths, request lines gunicorn refuses,
oversized metadata, cursors and filters that are not ours.

Each must be answered with a 4xx and the JSON error shape: never a 500, never a crashed web worker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from conftest import API_TOKEN, ready_payload
from helpers import (
    assert_error,
    created_since,
    job_ids,
    nested,
    raw_exchange,
    secret_of,
    serve_png,
    snapshot,
    web_worker_pids,
    webhook_url,
)

_NESTED_API_BODIES = {
    "submit_100000_nested_lists": ("/v1/jobs", nested(100_000)),
    "submit_metadata_nested_5000_deep": (
        "/v1/jobs", b'{"model": "flux-2-pro", "input": {"prompt": "x"}, "metadata": {"a": ' + nested(5000) + b"}}"),
    "track_100000_nested_lists": ("/v1/jobs/track", nested(100_000)),
    "track_metadata_nested_5000_deep": ("/v1/jobs/track", b'{"bfl_id": "nested-5000", "metadata": {"a": '
                                        + nested(5000) + b"}}"),
}


@pytest.mark.parametrize("case", list(_NESTED_API_BODIES))
def test_deeply_nested_api_body_never_takes_the_web_process_down(api, sim, stack, case):
    path, body = _NESTED_API_BODIES[case]
    workers, before = web_worker_pids(stack), job_ids(api)

    response = api.post(path, data=body, headers={"Content-Type": "application/json"})

    assert_error(response, response.status_code)  # whatever the status, the JSON error shape
    assert response.status_code != 202 and response.status_code != 201
    assert requests.get(api.base_url + "/healthz", timeout=5).status_code == 200
    assert stack.processes["web"].poll() is None
    assert web_worker_pids(stack) == workers
    assert created_since(api, before) == []
    assert sim.stats()["submitted"] == 0


# Deep nesting makes json.loads raise RecursionError, not ValueError: a parser that lets it
# through (as get_json(silent=True) does) answers 500 instead of 400.
@pytest.mark.parametrize("case", list(_NESTED_API_BODIES))
def test_deeply_nested_api_body_is_a_400_not_a_500(api, sim, case):
    path, body = _NESTED_API_BODIES[case]

    response = api.post(path, data=body, headers={"Content-Type": "application/json"})

    assert_error(response, 400, "invalid_request")


_NOT_STRICT_JSON = {
    "nan": lambda text: text.replace('"__X__"', "NaN"),
    "infinity": lambda text: text.replace('"__X__"', "-Infinity"),
    "lone-surrogate": lambda text: text.replace('"__X__"', '"\\ud800"'),
    "lone-surrogate-key": lambda text: text.replace('"k"', '"\\udfff"'),
}


@pytest.mark.parametrize("spoil", list(_NOT_STRICT_JSON))
@pytest.mark.parametrize("where", ["submit", "track", "callback"])
def test_json_that_is_not_strict_is_a_400_and_changes_nothing(api, sim, spy, spoil, where):
    """NaN, Infinity and lone surrogates parse in Python but cannot be stored or served back as JSON."""
    job = api.submit("[pending] strict json")
    before, ids = snapshot(api.job(job["id"])), job_ids(api)
    if where == "submit":
        url, payload = api.base_url + "/v1/jobs", {"model": "flux-2-pro", "input": {"prompt": "x"},
                                                   "metadata": {"k": "__X__"}}
    elif where == "track":
        url, payload = api.base_url + "/v1/jobs/track", {"bfl_id": "strict-json-task", "metadata": {"k": "__X__"}}
    else:
        url = webhook_url(api.base_url, job["id"])
        payload = dict(ready_payload(job["bfl_id"], serve_png(spy, "strict")), k="__X__")
    body = _NOT_STRICT_JSON[spoil](json.dumps(payload)).encode()
    assert body != json.dumps(payload).encode()

    response = requests.post(url, data=body, timeout=10, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}",
        "X-Webhook-Secret": secret_of(job["id"])})

    assert_error(response, 400, "invalid_request")
    assert snapshot(api.job(job["id"])) == before
    assert job_ids(api) == ids
    assert sim.stats()["submitted"] == 1
    assert spy.hits == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_api_takes_json_only_with_a_json_content_type(api, sim, content_type):
    before = job_ids(api)
    headers = {"Content-Type": content_type} if content_type else {}
    submit = api.post("/v1/jobs", data=json.dumps({"model": "flux-2-pro", "input": {"prompt": "x"}}), headers=headers)
    track = api.post("/v1/jobs/track", data=json.dumps({"bfl_id": "content-type-task"}), headers=headers)

    assert_error(submit, 400, "invalid_request")
    assert_error(track, 400, "invalid_request")
    assert created_since(api, before) == []
    assert sim.stats()["submitted"] == 0


ODD_JOB_PATHS = [
    "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
    "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/v1/jobs/..%2F..%2Fetc%2Fpasswd/image",
    "/v1/jobs/job_..",
    "/v1/jobs/job_../image",
    "/v1/jobs/%2e%2e",
    "/v1/jobs/%2e%2e/image",
    "/v1/jobs/..%5C..%5Cwindows%5Cwin.ini",
    "/v1/jobs/%00",
    "/v1/jobs/job_%00",
    "/v1/jobs/job_%0d%0aX-Injected:%201",
    "/v1/jobs/job_*",
    "/v1/jobs/job_%3F",
    "/v1/jobs/%E2%82%AC",
    "/v1/jobs/%ff%fe",
    "/v1/jobs/job_0000000000000000000000000I",
    "/v1/jobs/job_00000000000000000000000000%20",
    "/v1/jobs/" + "A" * 3000,
    "/v1/jobs/job_" + "0" * 3000 + "/image",
]


def _stored_files(stack) -> list[str]:
    """The stack's stored results: not their thumbnails, which a job's download makes just after it is stored (first
    as a ``.partial-`` file), so they may appear during a test."""
    folder = Path(stack.env["STORAGE_URL"].removeprefix("file://"))
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".partial-")
                  and not p.name.endswith("-thumb.webp"))


@pytest.mark.parametrize("path", ODD_JOB_PATHS)
def test_path_traversal_and_odd_job_ids_are_a_json_404_never_a_500(api, stack, two_stored_jobs, path):
    job, _ = two_stored_jobs
    before = snapshot(api.job(job["id"]))
    files = _stored_files(stack)

    answers = [api.get(path), api.delete(path.removesuffix("/image")), api.get(path.removesuffix("/image") + "/image")]

    for response in answers:
        assert_error(response, 404, "not_found")
        assert "X-Injected" not in response.headers
    assert snapshot(api.job(job["id"])) == before
    assert _stored_files(stack) == files
    assert api.get(f"/v1/jobs/{job['id']}/image").status_code == 200


def test_a_long_request_line_reaches_the_app_and_one_past_the_head_limit_is_refused_without_a_500(api, stack):
    workers = web_worker_pids(stack)

    long_id = api.get("/v1/jobs/" + "A" * 10_000)
    long_query = api.get("/v1/jobs", params={"q": "a" * 10_000})
    too_long = api.get("/v1/jobs/" + "A" * 70_000)

    # A 10,000-character id or query is the app's to answer, in its own words (no gunicorn request-line limit).
    assert_error(long_id, 404, "not_found")
    assert "'q' must be 1 to 200 characters" in assert_error(long_query, 400, "invalid_request")["message"]
    # Past the worker's 64 KiB head, the request line is refused before the app sees it, still as the API's JSON.
    assert "64 KiB" in assert_error(too_long, 414, "uri_too_long")["message"]
    assert requests.get(api.base_url + "/healthz", timeout=5).status_code == 200
    assert web_worker_pids(stack) == workers


@pytest.mark.parametrize("raw, status, code", [
    pytest.param(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
                 "request_header_fields_too_large",
                 id="header-line-too-long"),
    pytest.param(b"GET /webhooks/bfl/secret-token-in-path HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request",
                 id="bad-http-version"),
    pytest.param(b"\x16\x03\x01 not http at all\r\n\r\n", 400, "bad_request", id="not-http"),
])
def test_requests_gunicorn_refuses_get_a_json_error_that_quotes_nothing(stack, raw, status, code):
    answer = raw_exchange(stack, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode(), head
    assert b"Content-Type: application/json" in head, head
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error
    assert b"secret-token" not in answer and b"<html" not in answer


@pytest.mark.parametrize("endpoint", ["submit", "track"])
@pytest.mark.parametrize("metadata", [
    pytest.param({"blob": "x" * (16 * 1024)}, id="just-over-16-kib"),
    pytest.param({"blob": "x" * (2 * 1024 * 1024)}, id="two-mib"),
    pytest.param({f"k{n}": n for n in range(3000)}, id="three-thousand-keys"),
    pytest.param({"list": list(range(10_000))}, id="long-list"),
    pytest.param({"unicode": "€" * 3000}, id="unicode-escaped-over-the-limit"),
])
def test_huge_metadata_is_refused_and_creates_nothing(api, sim, endpoint, metadata):
    before = job_ids(api)

    if endpoint == "submit":
        response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}, "metadata": metadata})
    else:
        response = api.track("huge-metadata-task", metadata=metadata)

    assert_error(response, 400, "invalid_request")
    assert created_since(api, before) == []
    assert sim.stats()["submitted"] == 0


@pytest.mark.parametrize("cursor", [
    "not-a-cursor",
    "eyJvZmZzZXQiOiAxMDB9",  # base64 of {"offset": 100}
    "100",
    "-1",
    "+",
    "-",
    "(",
    "[job_",
    "(job_01M7Z1J863RJ8EJMXB0WTBFPHC",
    "job_01m7z1j863rj8ejmxb0wtbfphc",  # lower case
    "job_01M7Z1J863RJ8EJMXB0WTBFPH",  # 25 characters
    "job_01M7Z1J863RJ8EJMXB0WTBFPHCC",  # 27 characters
    "job_0000000000000000000000000U",  # U is not Crockford base32
    "job_01M7Z1J863RJ8EJMXB0WTBFPHC\n",
    "job_01M7Z1J863RJ8EJMXB0WTBFPHC ",
    "*",
    "' OR 1=1 --",
    "\u20ac" * 10,
    "x" * 3000,
])
def test_listing_cursor_that_is_not_ours_is_refused(api, cursor):
    response = api.get("/v1/jobs", params={"cursor": cursor, "limit": 5})

    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("status", ["STORED", "stored ", "stored,failed", "*", "status:stored", "jobs", "../jobs"])
def test_listing_status_filter_that_is_not_a_status_is_refused(api, status):
    response = api.get("/v1/jobs", params={"status": status})

    assert_error(response, 400, "invalid_request")
