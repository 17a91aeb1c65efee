"""The BFL client (fluxhook/bfl/client.py) against real HTTP servers: error mapping and its messages, retries, where
the API key may go, the account's credits. Poll redirects: test_client_redirects.py."""

from __future__ import annotations

import io
import json

import pytest
import requests

from devtools.processes import free_port
from devtools.stack import SIMULATOR_KEY
from fluxhook.bfl.client import BFLClient, error_for
from fluxhook.core.config import Config
from fluxhook.core.errors import BFLAuthFailed, BFLRateLimited, BFLRejected, BFLUnavailable, InsufficientCredits
from fluxhook.net.http_client import HTTPClient


def _client(base: str, key: str = SIMULATOR_KEY, api_hosts: str | None = "api.bfl.ai,api.*.bfl.ai") -> BFLClient:
    """A client of ``base``; ``api_hosts`` None leaves API_HOST_ALLOWLIST at its default."""
    config = Config.from_env({
        "REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": key, "BFL_API_BASE": base,
        "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456",
        **({} if api_hosts is None else {"API_HOST_ALLOWLIST": api_hosts}),
    })
    return BFLClient(config, HTTPClient(), sleep=lambda seconds: None)


def test_submit_and_get_result(sim):
    client = _client(sim.url)
    task = client.submit("flux-2-pro", {"prompt": "[pending] x"})
    assert task["id"] and task["polling_url"].startswith(sim.url)
    assert client.get_result(task["id"], task["polling_url"])["status"] == "Pending"
    assert client.get_result("no-such-task")["status"] == "Task not found"


def test_bfl_refusals_map_to_named_errors(sim):
    with pytest.raises(BFLAuthFailed):
        _client(sim.url, key="wrong-key").submit("flux-2-pro", {"prompt": "x"})
    with pytest.raises(BFLRejected):
        _client(sim.url).submit("flux-2-pro", {"width": 5})  # no prompt: 422
    with pytest.raises(BFLRejected):
        _client(sim.url).submit("Not A Model", {"prompt": "x"})
    sim.settings(max_active=1)
    _client(sim.url).submit("flux-2-pro", {"prompt": "[pending] holds the slot"})
    with pytest.raises(BFLRateLimited) as limited:
        _client(sim.url).submit("flux-2-pro", {"prompt": "x"})
    assert limited.value.retry_after == 1.0
    sim.settings(max_active=24, credits=0)
    with pytest.raises(InsufficientCredits):
        _client(sim.url).submit("flux-2-pro", {"prompt": "x"})


def test_unreachable_bfl_is_retried_then_reported():
    with pytest.raises(BFLUnavailable):
        _client(f"http://127.0.0.1:{free_port()}").get_result("task")


def test_5xx_is_retried(spy):
    answers = iter([(503, {}, b"busy"), (502, {}, b"bad gateway"),
                    (200, {"Content-Type": "application/json"}, json.dumps({"id": "t", "status": "Pending"}).encode())])
    spy.route("/v1/get_result?id=t", body=lambda: next(answers))
    assert _client(spy.url).get_result("t")["status"] == "Pending"
    assert spy.hits == ["/v1/get_result?id=t"] * 3


def test_polling_url_outside_the_allowlist_is_replaced_by_the_base_url(sim, unlisted_spy):
    client = _client(sim.url)
    for polling_url in (f"{unlisted_spy.url}/v1/get_result?id=t",  # not listed
                        "https://localhost/v1/get_result?id=t",      # listed below by pattern, but loopback
                        "http://api.bfl.ai/v1/get_result?id=t",      # listed, but not https
                        "ftp://api.bfl.ai/x"):
        target, url = _client(sim.url, api_hosts="localhost,api.bfl.ai").poll_target("t", polling_url)
        assert url == f"{sim.url}/v1/get_result?id=t"
    assert client.get_result("t", f"{unlisted_spy.url}/v1/get_result?id=t")["status"] == "Task not found"
    assert unlisted_spy.hits == []


def test_by_default_bfls_gateways_are_polled_at_their_polling_url_and_no_other_domain_gets_the_key(sim):
    client = _client(sim.url, api_hosts=None)
    for polling_url in ("https://gateway.bfl.ai/v1/get_result?id=t", "https://api.eu.bfl.ai/v1/get_result?id=t",
                        "https://api.us1.bfl.ai/v1/get_result?id=t"):
        target, url = client.poll_target("t", polling_url)
        assert (url, target.exact) == (polling_url, False)
    for polling_url in ("https://api.bfl.ai@evil.com/v1/get_result?id=t", "https://bfl.ai.evil.com/v1/get_result?id=t",
                        "https://a.b.c.bfl.ai/v1/get_result?id=t", "http://gateway.bfl.ai/v1/get_result?id=t",
                        "https://evil.com\t.bfl.ai/v1/get_result?id=t"):
        target, url = client.poll_target("t", polling_url)
        assert (url, target.exact) == (f"{sim.url}/v1/get_result?id=t", True), polling_url


def test_listed_exact_polling_url_is_used(sim):
    host = sim.url.removeprefix("http://")
    target, url = _client(sim.url, api_hosts=host).poll_target("t", f"{sim.url}/v1/get_result?id=t&x=1")
    assert url.endswith("&x=1") and target.exact


def _bfl(base: str, key: str = SIMULATOR_KEY) -> BFLClient:
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": key, "BFL_API_BASE": base,
                              "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456"})
    return BFLClient(config, HTTPClient(), sleep=lambda seconds: None)


def test_credits(sim, spy):
    sim.settings(credits=7)
    assert _bfl(sim.url).credits() == 7.0
    with pytest.raises(BFLAuthFailed):
        _bfl(sim.url, key="wrong-key").credits()
    spy.route("/v1/credits", body=json.dumps({"credits": "lots"}).encode(),
              headers={"Content-Type": "application/json"})
    with pytest.raises(BFLUnavailable):
        _bfl(spy.url).credits()
    spy.route("/v1/credits", body=b'{"credits": 12.5}', headers={"Content-Type": "application/json"})
    assert _bfl(spy.url).credits() == 12.5


def _bfl_answer(method: str, path: str, status: int, body: dict) -> requests.Response:
    """An answer of BFL's as requests hands it over (what BFLClient reads: status, body, the request's method)."""
    response = requests.Response()
    response.status_code, response.raw = status, io.BytesIO(json.dumps(body).encode())
    response.url = f"https://api.bfl.ai{path}"
    response.request = requests.Request(method, response.url).prepare()
    return response


def test_a_model_bfl_does_not_have_is_named_with_what_to_check():
    # BFL answers a submission to an unknown model's path with a plain 404 "Not Found".
    error = error_for(_bfl_answer("POST", "/v1/flux-2-prp", 404, {"detail": "Not Found"}))
    assert error.code == "bfl_rejected" and error.status == 400
    assert error.message.startswith("BFL has no model 'flux-2-prp' (it answered 404 to POST /v1/flux-2-prp)")
    assert "check 'model'" in error.message
    # A poll's 422 is not about the caller's input.
    poll = error_for(_bfl_answer("GET", "/v1/get_result", 422,
                                 {"detail": [{"loc": ["query", "id"], "msg": "Field required"}]}))
    assert poll.message == "BFL refused the request (422): query.id: Field required"
