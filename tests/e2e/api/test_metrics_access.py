"""/metrics is not public: it names every app key and what each spends, so it answers only an admin token
or METRICS_TOKEN, and METRICS_TOKEN opens nothing else. Over real HTTP against the session stack."""

from __future__ import annotations

import re

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST

from conftest import API, API_TOKEN, METRICS_TOKEN
from helpers import assert_error
from key_helpers import make_key


def _metrics(api: API, headers: dict[str, str]) -> requests.Response:
    return requests.get(api.base_url + "/metrics", headers=headers, timeout=10)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-a-token-at-all"},
    {"Authorization": f"Basic {METRICS_TOKEN}"},
    {"Authorization": f"Bearer {METRICS_TOKEN}x"},
])
def test_metrics_without_a_token_that_opens_them_answer_401(api, headers):
    response = _metrics(api, headers)

    assert_error(response, 401, "unauthorized")
    assert "fluxhook_" not in response.text


def test_an_app_key_does_not_open_the_metrics(api):
    _, app = make_key(api)

    assert_error(_metrics(api, dict(app.http.headers)), 401, "unauthorized")


@pytest.mark.parametrize("token", [API_TOKEN, METRICS_TOKEN])
def test_an_admin_token_or_the_metrics_token_opens_them_and_nothing_less_does(api, token):
    response = _metrics(api, {"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    # Prometheus's own content type, each parameter once: a scraper's parser refuses a parameter given twice.
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "# TYPE fluxhook_jobs gauge" in response.text
    assert _metrics(api, {}).status_code == 401


def test_the_metrics_token_opens_the_metrics_and_nothing_else(api):
    scraper = API(api.base_url, token=METRICS_TOKEN)
    job = api.submit("[pending] seen by admins only")

    assert scraper.get("/metrics").status_code == 200 and _metrics(api, {}).status_code == 401

    for path in ("/v1/jobs", f"/v1/jobs/{job['id']}", "/v1/keys", "/v1/usage"):
        assert_error(scraper.get(path), 401, "unauthorized")
    assert_error(scraper.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "a fox"}}), 401,
                 "unauthorized")
    assert_error(scraper.post("/v1/jobs/track", json={"bfl_id": "not-for-scrapers"}), 401, "unauthorized")
    # Nor the dashboard: its sign-in takes admin tokens only.
    browser = requests.Session()
    form = browser.get(api.base_url + "/signin", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signin = browser.post(api.base_url + "/signin", data={"csrf_token": csrf, "token": METRICS_TOKEN},
                          allow_redirects=False, timeout=10)
    assert signin.status_code == 401
