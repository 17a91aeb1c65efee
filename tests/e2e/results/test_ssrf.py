"""Server-side request forgery through ``result.sample``, redirects and ``polling_url``, against the
Procfile's processes over real HTTP on 127.0.0.1.

fluxhook fetches what BFL's callbacks and tracked tasks name; these tests name loopback, private,
link-local and metadata addresses in every spelling, other schemes and userinfo tricks. A result
URL that is not allowed fails the job ``host_not_allowed``, a ``polling_url`` that is not allowed is
replaced by BFL's own API (the API key goes nowhere else), and the hosts outside the allowlists
never get a request.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import requests

from conftest import STATIC_SECRET, ready_payload
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from helpers import assert_error, deliver, hmac_hex, job_ids, serve_png


def assert_refused_host(job: dict) -> None:
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "host_not_allowed", job
    assert job["image"] is None
    assert job["bfl_status"] == "Ready"


# Builders of URLs that must never be fetched: ``p`` is the unlisted spy's port, ``a`` the allowlisted one's.
SSRF_URLS = [
    # loopback
    pytest.param(lambda p, a: f"http://127.0.0.1:{p}/x.png", id="loopback-unlisted-port"),
    pytest.param(lambda p, a: f"http://127.1:{p}/x.png", id="loopback-short-form"),
    pytest.param(lambda p, a: f"http://127.0.0.2:{p}/x.png", id="loopback-other-address"),
    pytest.param(lambda p, a: f"http://localhost:{p}/x.png", id="localhost-unlisted-port"),
    pytest.param(lambda p, a: f"http://localhost:{a}/x.png", id="localhost-on-the-allowlisted-port"),
    pytest.param(lambda p, a: "https://localhost/x.png", id="localhost-listed-glob-resolves-to-loopback"),
    pytest.param(lambda p, a: "https://LOCALHOST./x.png", id="localhost-upper-case-trailing-dot"),
    pytest.param(lambda p, a: f"http://[::1]:{p}/x.png", id="ipv6-loopback"),
    pytest.param(lambda p, a: "https://[::1]/x.png", id="ipv6-loopback-https"),
    pytest.param(lambda p, a: f"http://0.0.0.0:{p}/x.png", id="unspecified-address"),
    # private, link-local, cloud metadata
    pytest.param(lambda p, a: "https://10.0.0.1/x.png", id="private-10"),
    pytest.param(lambda p, a: "https://172.16.0.1/x.png", id="private-172-16"),
    pytest.param(lambda p, a: "https://192.168.1.1/x.png", id="private-192-168"),
    pytest.param(lambda p, a: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", id="cloud-metadata"),
    pytest.param(lambda p, a: "https://100.64.0.1/x.png", id="carrier-grade-nat"),
    # IPv6 spellings
    pytest.param(lambda p, a: f"http://[::ffff:127.0.0.1]:{p}/x.png", id="ipv4-mapped-ipv6"),
    pytest.param(lambda p, a: f"http://[::ffff:7f00:1]:{p}/x.png", id="ipv4-mapped-ipv6-hex"),
    pytest.param(lambda p, a: f"http://[::ffff:127.0.0.1]:{a}/x.png", id="ipv4-mapped-ipv6-allowlisted-port"),
    pytest.param(lambda p, a: f"http://[64:ff9b::7f00:1]:{p}/x.png", id="nat64-loopback"),
    pytest.param(lambda p, a: "https://[fc00::1]/x.png", id="unique-local-fc00"),
    pytest.param(lambda p, a: "https://[fd12:3456::1]/x.png", id="unique-local-fd"),
    pytest.param(lambda p, a: "https://[fe80::1]/x.png", id="link-local-fe80"),
    pytest.param(lambda p, a: "http://[fe80::1%25lo]/x.png", id="link-local-with-zone"),
    # decimal, octal and hex spellings of 127.0.0.1 (glibc resolves them all)
    pytest.param(lambda p, a: f"http://2130706433:{p}/x.png", id="decimal"),
    pytest.param(lambda p, a: f"http://0177.0.0.1:{p}/x.png", id="octal"),
    pytest.param(lambda p, a: f"http://0x7f.0.0.1:{p}/x.png", id="hex-octet"),
    pytest.param(lambda p, a: f"http://0x7f000001:{p}/x.png", id="hex-whole"),
    pytest.param(lambda p, a: f"http://2130706433:{a}/x.png", id="decimal-on-the-allowlisted-port"),
    # names in /etc/hosts that resolve to 127.0.0.1
    pytest.param(lambda p, a: f"http://vm:{p}/x.png", id="hosts-file-name"),
    # other schemes
    pytest.param(lambda p, a: "file:///etc/passwd", id="file"),
    pytest.param(lambda p, a: f"ftp://127.0.0.1:{a}/x.png", id="ftp-to-the-allowlisted-host"),
    pytest.param(lambda p, a: f"gopher://127.0.0.1:{p}/_GET%20/x.png", id="gopher"),
    pytest.param(lambda p, a: "data:image/png;base64,iVBORw0KGgo=", id="data"),
    pytest.param(lambda p, a: f"//127.0.0.1:{p}/x.png", id="scheme-relative"),
    pytest.param(lambda p, a: f"127.0.0.1:{a}/x.png", id="no-scheme"),
    # userinfo tricks
    pytest.param(lambda p, a: f"https://delivery.bfl.ai@127.0.0.1:{p}/x.png", id="userinfo-bfl-host"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}@127.0.0.1:{p}/x.png", id="userinfo-allowlisted-host"),
    pytest.param(lambda p, a: f"https://127.0.0.1:{p}\\@delivery.bfl.ai/x.png", id="backslash-userinfo"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}\\@127.0.0.1:{p}/x.png", id="backslash-userinfo-allowlisted"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{p}#@127.0.0.1:{a}/x.png", id="fragment-at-allowlisted"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}:{p}/x.png", id="two-ports"),
    # control characters that URL parsers strip or keep differently
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}\t@127.0.0.1:{p}/x.png", id="tab-before-userinfo-end"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}\r\n@127.0.0.1:{p}/x.png", id="crlf-before-userinfo-end"),
    pytest.param(lambda p, a: f" http://127.0.0.1:{p}/x.png", id="leading-space"),
]


@pytest.mark.parametrize("make_url", SSRF_URLS)
def test_ssrf_through_result_sample_fails_the_job_host_not_allowed_unsent(api, sim, spy, unlisted_spy, make_url):
    serve_png(unlisted_spy, "x")
    url = make_url(unlisted_spy.port, spy.port)

    job = deliver(api, url)

    assert_refused_host(job)
    assert job["attempts"]["downloads"] == 1
    assert job["attempts"]["polls"] == 0  # a proven Ready with a refused URL fails at once
    assert_error(api.get(f"/v1/jobs/{job['id']}/image"), 410, "gone")
    assert unlisted_spy.hits == []
    assert spy.hits == []


@pytest.mark.parametrize("make_url", [
    pytest.param(lambda p, a: f"http://127.0.0.1:{p}/x.png", id="loopback-unlisted-port"),
    pytest.param(lambda p, a: "http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param(lambda p, a: f"http://127.0.0.1:{a}@127.0.0.1:{p}/x.png", id="userinfo-allowlisted-host"),
    pytest.param(lambda p, a: "https://localhost/x.png", id="localhost-listed-glob-resolves-to-loopback"),
])
def test_ssrf_through_a_verified_static_callback_is_refused_unsent(api, sim, spy, unlisted_spy, make_url):
    serve_png(unlisted_spy, "x")
    tracked = api.track(f"static-ssrf-{time.time_ns()}")
    assert tracked.status_code == 201, tracked.text
    job = tracked.json()
    body = json.dumps(ready_payload(job["bfl_id"], make_url(unlisted_spy.port, spy.port))).encode()

    response = requests.post(api.base_url + "/webhooks/bfl", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-BFL-Signature": "sha256=" + hmac_hex(STATIC_SECRET, body)})

    # A static Ready is a hint: BFL is asked, and a URL nobody but the callback named is never fetched.
    assert response.status_code == 200 and response.json()["outcome"] == "confirm_queued", response.text
    checked = wait_until(lambda: (lambda j: j if j["attempts"]["polls"] >= 1 else None)(api.job(job["id"])),
                         timeout=10, message="the confirming poll")
    assert checked["attempts"]["downloads"] == 0 and checked["status"] != "ready"
    assert unlisted_spy.hits == []
    assert spy.hits == []


# Where the allowlisted spy's last redirect points (``p`` unlisted spy's port, ``a`` allowlisted one's).
REDIRECT_TARGETS = {
    "unlisted-spy": lambda p, a: f"http://127.0.0.1:{p}/x.png",
    "scheme-relative-unlisted-spy": lambda p, a: f"//127.0.0.1:{p}/x.png",
    "localhost": lambda p, a: f"http://localhost:{p}/x.png",
    "localhost-listed-glob": lambda p, a: "https://localhost/x.png",
    "decimal-ip": lambda p, a: f"http://2130706433:{p}/x.png",
    "ipv4-mapped-ipv6": lambda p, a: f"http://[::ffff:127.0.0.1]:{p}/x.png",
    "cloud-metadata": lambda p, a: "http://169.254.169.254/latest/meta-data/",
    "private-10": lambda p, a: "https://10.0.0.1/x.png",
    "file": lambda p, a: "file:///etc/passwd",
    "gopher": lambda p, a: f"gopher://127.0.0.1:{p}/_x",
    "userinfo-allowlisted-host": lambda p, a: f"http://127.0.0.1:{a}@127.0.0.1:{p}/x.png",
}


@pytest.mark.parametrize("target, status", [(target, 302) for target in REDIRECT_TARGETS]
                         + [("unlisted-spy", status) for status in (301, 303, 307, 308)])
def test_redirect_from_an_allowlisted_host_to_an_internal_address_is_not_followed(
        api, sim, spy, unlisted_spy, target, status):
    serve_png(unlisted_spy, "x")
    # Two hops on the allowlisted host first, then the bad one.
    location = REDIRECT_TARGETS[target](unlisted_spy.port, spy.port)
    spy.route("/hop2", status=status, headers={"Location": location})
    spy.route("/hop1", status=status, headers={"Location": "/hop2"})

    job = deliver(api, spy.url + "/hop1")

    assert_refused_host(job)
    assert spy.hits == ["/hop1", "/hop2"]
    assert unlisted_spy.hits == []


def test_open_redirect_on_the_allowlisted_bfl_host_cannot_reach_an_unlisted_host(api, sim, unlisted_spy):
    target = serve_png(unlisted_spy, "x")
    # The simulator (an exact allowlist entry) has an open redirect: /redirect?to=...
    job = deliver(api, f"{sim.url}/redirect?to={quote(target, safe='')}")

    assert_refused_host(job)
    assert unlisted_spy.hits == []


# polling_url values whose host is not in API_HOST_ALLOWLIST, the API key must not go there:
# {p} is the unlisted spy's port, {a} the allowlisted delivery spy's, {s} the simulator's host:port.
POLLING_URLS = {
    "unlisted-spy": "http://127.0.0.1:{p}/v1/get_result?id=",
    "allowlisted-delivery-host": "http://127.0.0.1:{a}/poll?id=",
    "https-unlisted-spy": "https://127.0.0.1:{p}/v1/get_result?id=",
    "localhost": "http://localhost:{p}/v1/get_result?id=",
    "short-loopback": "http://127.1:{p}/v1/get_result?id=",
    "decimal": "http://2130706433:{p}/v1/get_result?id=",
    "octal": "http://0177.0.0.1:{p}/v1/get_result?id=",
    "hex": "http://0x7f.0.0.1:{p}/v1/get_result?id=",
    "ipv4-mapped-ipv6": "http://[::ffff:127.0.0.1]:{p}/v1/get_result?id=",
    "ipv4-mapped-ipv6-hex": "http://[::ffff:7f00:1]:{p}/v1/get_result?id=",
    "ipv6-loopback": "http://[::1]:{p}/v1/get_result?id=",
    "hosts-file-name": "http://vm:{p}/v1/get_result?id=",
    "private-10": "https://10.0.0.1/v1/get_result?id=",
    "private-192-168": "https://192.168.0.1/v1/get_result?id=",
    "cloud-metadata": "http://169.254.169.254/latest/meta-data/?id=",
    "unique-local": "https://[fd00::1]/v1/get_result?id=",
    "link-local": "https://[fe80::1]/v1/get_result?id=",
    "userinfo-bfl-host": "https://api.bfl.ai@127.0.0.1:{p}/v1/get_result?id=",
    "userinfo-allowlisted-simulator": "http://{s}@127.0.0.1:{p}/v1/get_result?id=",
    "backslash-userinfo": "http://127.0.0.1:{p}\\@{s}/v1/get_result?id=",
    "fragment-at-simulator": "http://127.0.0.1:{p}/v1/get_result#@{s}/?id=",
}


def test_ssrf_through_polling_url_never_sends_the_api_key_there_and_polls_bfl_instead(api, sim, spy, unlisted_spy):
    places = {"p": unlisted_spy.port, "a": spy.port, "s": sim.url.removeprefix("http://")}
    tasks = {}
    for name, template in POLLING_URLS.items():
        task = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": f"[pending] {name}"},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10).json()
        response = api.track(task["id"], polling_url=template.format(**places) + task["id"])
        assert response.status_code == 201, (name, response.text)
        tasks[name] = (task["id"], response.json()["id"])

    # After the 2 s grace period the sweep polls each task: at BFL_API_BASE, never at its polling_url.
    for name, (task_id, job_id) in tasks.items():
        wait_until(lambda task_id=task_id: sim.task(task_id)["polls"] >= 1, timeout=20,
                   message=f"a poll of {name} at the simulator")
        job = wait_until(lambda job_id=job_id: (lambda j: j if j["bfl_status"] else None)(api.job(job_id)), timeout=10,
                         message=f"the poll of {name} to be recorded")
        assert job["attempts"]["polls"] >= 1, (name, job)
        assert (job["status"], job["bfl_status"], job["error"]) == ("submitted", "Pending", None), (name, job)
    assert unlisted_spy.hits == []
    assert [hit for hit in spy.hits if hit.startswith("/poll")] == []


@pytest.mark.parametrize("polling_url", [
    "file:///etc/passwd", "ftp://127.0.0.1/get_result", "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/stat",
    "//127.0.0.1/get_result", "javascript:alert(1)", "https://" + "a" * 2100,
])
def test_track_with_a_polling_url_that_is_not_http_is_refused_and_creates_nothing(api, sim, polling_url):
    before = job_ids(api)

    response = api.track("polling-url-scheme", polling_url=polling_url)

    assert_error(response, 400, "invalid_request")
    assert job_ids(api) == before
