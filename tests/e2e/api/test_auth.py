"""Who may read and change jobs, over real HTTP on 127.0.0.1: the bearer tokens of the /v1 API,
the signed URLs of stored images, and links built from PUBLIC_BASE_URL whatever the request claims.

Each refusal is a 401 with the JSON error shape, and changes nothing.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from conftest import API_TOKEN, IMAGE_URL_WINDOW, SECRET_KEY, STATIC_SECRET
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import signing
from helpers import OTHER_KEY, SECOND_TOKEN, assert_error, secret_of, send_raw, snapshot, webhook_url

IMAGE_URL_TTL = 60  # the stack's IMAGE_URL_TTL_SECONDS
# The oldest a link may be and open: TTL + IMAGE_URL_WINDOW_SECONDS - 1 (a link carries its window's start).
LINK_MAX_AGE = IMAGE_URL_TTL + IMAGE_URL_WINDOW - 1


@pytest.mark.parametrize("authorization, status", [
    pytest.param(None, 401, id="missing"),
    pytest.param(b"Bearer", 401, id="scheme-without-token"),
    pytest.param(b"Bearer ", 401, id="scheme-and-space"),
    pytest.param(b"Bearer    ", 401, id="scheme-and-spaces"),
    pytest.param(API_TOKEN.encode(), 401, id="token-without-scheme"),
    pytest.param(f"Token {API_TOKEN}".encode(), 401, id="other-scheme"),
    pytest.param(f"Basic {API_TOKEN}".encode(), 401, id="basic-scheme"),
    pytest.param(f"Bearer\t{API_TOKEN}".encode(), 401, id="tab-instead-of-space"),
    pytest.param(f"Bearer {API_TOKEN}x".encode(), 401, id="token-with-suffix"),
    pytest.param(f"Bearer {API_TOKEN[:-1]}".encode(), 401, id="token-prefix"),
    pytest.param(f"Bearer {API_TOKEN.upper()}".encode(), 401, id="token-upper-case"),
    pytest.param(f"Bearer {API_TOKEN},{SECOND_TOKEN}".encode(), 401, id="two-tokens-in-one"),
    pytest.param(f"Bearer {SECRET_KEY}".encode(), 401, id="secret-key-as-token"),
    pytest.param(f"Bearer {SIMULATOR_KEY}".encode(), 401, id="bfl-api-key-as-token"),
    pytest.param(f"Bearer {STATIC_SECRET}".encode(), 401, id="webhook-secret-as-token"),
    pytest.param("Bearer tökén-€".encode(), 401, id="unicode-token"),
    pytest.param(b"Bearer \xff\xfe\xfd", 401, id="non-utf8-token"),
    pytest.param(f"bearer {API_TOKEN}".encode(), 200, id="lower-case-scheme"),
    pytest.param(f"BEARER {API_TOKEN}".encode(), 200, id="upper-case-scheme"),
    pytest.param(f"Bearer {API_TOKEN} ".encode(), 200, id="trailing-whitespace"),
    pytest.param(f"Bearer  {API_TOKEN}".encode(), 200, id="two-spaces"),
    pytest.param(f"Bearer {SECOND_TOKEN}".encode(), 200, id="second-configured-token"),
])
def test_bearer_token_variants_on_the_api(stack, authorization, status):
    """Schemes are case-free (RFC 9110); the token must be one from API_TOKENS exactly."""
    headers = [] if authorization is None else [("Authorization", authorization)]

    response = send_raw("GET", stack.base_url + "/v1/jobs?limit=1", headers)

    if status == 200:
        assert response.status_code == 200, response.text
        assert "jobs" in response.json()
    else:
        error = assert_error(response, 401, "unauthorized")
        assert API_TOKEN not in error["message"] and SECOND_TOKEN not in error["message"]


@pytest.mark.parametrize("lines", [
    pytest.param([f"Bearer {API_TOKEN}", "Bearer wrong"], id="right-then-wrong"),
    pytest.param(["Bearer wrong", f"Bearer {API_TOKEN}"], id="wrong-then-right"),
])
def test_repeated_authorization_headers_are_refused(stack, lines):
    response = send_raw("GET", stack.base_url + "/v1/jobs", [("Authorization", line) for line in lines])

    assert_error(response, 401, "unauthorized")


def test_credentials_outside_the_authorization_header_are_refused(api, sim, stack):
    job = api.submit("[pending] guarded")
    before = snapshot(api.job(job["id"]))
    attempts = [
        requests.get(f"{stack.base_url}/v1/jobs", params={"token": API_TOKEN}, timeout=10),
        requests.get(f"{stack.base_url}/v1/jobs", params={"access_token": API_TOKEN}, timeout=10),
        requests.get(f"{stack.base_url}/v1/jobs", headers={"X-Api-Key": API_TOKEN}, timeout=10),
        requests.get(f"{stack.base_url}/v1/jobs", cookies={"token": API_TOKEN}, timeout=10),
        # The bearer token is not an image token.
        requests.get(f"{stack.base_url}/v1/jobs/{job['id']}/image", params={"token": API_TOKEN}, timeout=10),
        requests.delete(f"{stack.base_url}/v1/jobs/{job['id']}", params={"token": API_TOKEN}, timeout=10),
        requests.post(f"{stack.base_url}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}},
                      headers={"Authorization": "Bearer wrong"}, timeout=10),
        requests.post(f"{stack.base_url}/v1/jobs/track", json={"bfl_id": "sneaky"},
                      headers={"Authorization": "Bearer wrong"}, timeout=10),
    ]

    for response in attempts:
        assert_error(response, 401, "unauthorized")
    assert snapshot(api.job(job["id"])) == before
    assert sim.stats()["submitted"] == 1
    assert all(j["bfl_id"] != "sneaky" for j in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"])


class _IssuedAt(TimestampSigner):
    """A TimestampSigner whose tokens carry a chosen issue time (no clock is patched)."""

    issued_at = 0

    def get_timestamp(self) -> int:
        return self.issued_at


def image_token_issued(job_id: str, age: int, key: str = SECRET_KEY) -> str:
    """An image token exactly like signing.file_token's, but issued ``age`` seconds ago (negative: in the future)."""
    signer = type("Signer", (_IssuedAt,), {"issued_at": int(time.time()) - age})
    return URLSafeTimedSerializer(key, salt="fluxhook.image-url", signer=signer).dumps(job_id)


@pytest.mark.parametrize("age, status", [
    pytest.param(5, 200, id="fresh"),
    pytest.param(LINK_MAX_AGE - 15, 200, id="just-inside-the-ttl-and-window"),
    pytest.param(LINK_MAX_AGE + 2, 401, id="just-past-the-ttl-and-window"),
    pytest.param(3600, 401, id="an-hour-old"),
    pytest.param(365 * 86400, 401, id="a-year-old"),
    pytest.param(-3600, 401, id="issued-in-the-future"),
])
def test_signed_image_url_expires(two_stored_jobs, stack, age, status):
    a, _ = two_stored_jobs
    token = image_token_issued(a["id"], age)
    # The hand-made token is the real thing: signing.py itself accepts it when age is no issue.
    if age >= 0:
        assert signing.file_token_valid(SECRET_KEY, token, a["id"], "image", 10 * 365 * 86400)

    response = requests.get(f"{stack.base_url}/v1/jobs/{a['id']}/image", params={"token": token}, timeout=10)

    if status == 200:
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == a["image"]["sha256"]
    else:
        assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("case", [
    "token_of_a_on_b", "token_of_a_with_path_of_b_appended", "two_tokens_a_then_b_on_b", "token_of_b_other_key",
    "webhook_token_of_b", "webhook_secret_of_b", "bearer_token_as_image_token", "no_token_unknown_job",
    "token_of_a_on_unknown_job",
])
def test_signed_image_url_of_one_job_does_not_open_another(two_stored_jobs, stack, case):
    a, b = two_stored_jobs
    token_a = parse_qs(urlsplit(a["image"]["url"]).query)["token"][0]
    token_b = parse_qs(urlsplit(b["image"]["url"]).query)["token"][0]
    target, query = b["id"], {
        "token_of_a_on_b": [("token", token_a)],
        "token_of_a_with_path_of_b_appended": [("token", token_a + b["id"])],
        "two_tokens_a_then_b_on_b": [("token", token_a), ("token", token_b)],
        "token_of_b_other_key": [("token", signing.file_token(OTHER_KEY, b["id"], "image"))],
        "webhook_token_of_b": [("token", signing.webhook_token(SECRET_KEY, b["id"]))],
        "webhook_secret_of_b": [("token", secret_of(b["id"]))],
        "bearer_token_as_image_token": [("token", API_TOKEN)],
        "no_token_unknown_job": [],
        "token_of_a_on_unknown_job": [("token", token_a)],
    }[case]
    if "unknown_job" in case:
        target = "job_" + "0" * 26

    response = requests.get(f"{stack.base_url}/v1/jobs/{target}/image", params=query, timeout=10)

    # 401 even for a job that does not exist: the answer tells an outsider nothing about job ids.
    assert_error(response, 401, "unauthorized")
    assert requests.get(a["image"]["url"], timeout=10).status_code == 200  # A's own URL still works
    assert requests.get(f"{stack.base_url}/v1/jobs/{b['id']}/image", params={"token": token_b},
                        timeout=10).status_code == 200


def test_host_and_forwarded_headers_cannot_poison_signed_urls(api, sim, stack, two_stored_jobs):
    """Links are built from PUBLIC_BASE_URL, never from what the request says its host is."""
    public = stack.env["PUBLIC_BASE_URL"]
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
            "Forwarded": "for=1.2.3.4;host=evil.example;proto=https", "X-Original-URL": "/v1/jobs"}
    a, _ = two_stored_jobs

    shown = api.get(f"/v1/jobs/{a['id']}", headers=evil)
    listed = api.get("/v1/jobs", params={"status": "stored", "limit": 100}, headers=evil)
    submitted = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] host"}}, headers=evil)

    assert shown.status_code == 200 and listed.status_code == 200 and submitted.status_code == 202
    assert shown.json()["image"]["url"].startswith(f"{public}/v1/jobs/{a['id']}/image?token=")
    urls = [j["image"]["url"] for j in listed.json()["jobs"] if j["image"]]
    assert urls and all(url.startswith(f"{public}/v1/jobs/") for url in urls)
    job = submitted.json()
    assert sim.task(job["bfl_id"])["webhook_url"] == webhook_url(public, job["id"], model=job["model"])
