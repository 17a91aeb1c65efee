"""Polls that BFL redirects: followed by hand, at most 3 hops, each to an allowed host only, so
``x-key`` never reaches any other host. Real HTTP servers on 127.0.0.1 record every request and its headers."""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler

import pytest

from devtools.processes import free_port
from fluxhook.bfl.client import BFLClient, redirect_target
from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.errors import BFLError, HostNotAllowed
from fluxhook.core.hosts import parse_host_pattern
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.lifecycle import checking
from fluxhook.net.http_client import HTTPClient
from helpers import answer, serve

KEY = "poll-redirect-key"


class Host:
    """Answers each path with a scripted (status, headers, body); records (path, x-key) of every request."""

    def __init__(self):
        self.port = free_port()
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.seen: list[tuple[str, str | None]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                host.seen.append((self.path, self.headers.get("x-key")))
                status, headers, body = host.routes.get(self.path, (404, {}, b"{}"))
                answer(self, status, body, headers)

            def log_message(self, *args):
                pass

        self.server = serve(self.port, Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": to}, b"")

    def answer(self, path: str, payload: dict) -> None:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(payload).encode())


@pytest.fixture()
def hosts():
    made = [Host(), Host(), Host()]
    yield made
    for host in made:
        host.server.shutdown()
        host.server.server_close()


def _client(*allowed: Host) -> BFLClient:
    config = Config.from_env({
        "REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": KEY, "BFL_API_BASE": allowed[0].url,
        "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456",
        "API_HOST_ALLOWLIST": ",".join(f"127.0.0.1:{h.port}" for h in allowed),
    })
    return BFLClient(config, HTTPClient(), attempts=1, sleep=lambda seconds: None)


def test_a_poll_redirected_to_a_regional_host_is_followed_with_the_key(hosts):
    api, regional, _ = hosts
    api.redirect("/v1/get_result?id=t1", f"{regional.url}/v1/get_result?id=t1", status=307)
    regional.redirect("/v1/get_result?id=t1", "/eu/get_result?id=t1")  # relative: same host
    regional.answer("/eu/get_result?id=t1", {"id": "t1", "status": "Generating", "progress": 0.5})

    answer = _client(api, regional).get_result("t1", f"{api.url}/v1/get_result?id=t1")

    assert answer["status"] == "Generating"
    assert api.seen == [("/v1/get_result?id=t1", KEY)]
    assert regional.seen == [("/v1/get_result?id=t1", KEY), ("/eu/get_result?id=t1", KEY)]


def test_a_redirect_to_a_host_off_the_allowlist_is_never_sent(hosts):
    api, regional, elsewhere = hosts
    api.redirect("/v1/get_result?id=t2", f"{elsewhere.url}/steal?id=t2")
    elsewhere.answer("/steal?id=t2", {"id": "t2", "status": "Ready", "result": {"sample": "x"}})

    with pytest.raises(BFLError):
        _client(api, regional).get_result("t2", f"{api.url}/v1/get_result?id=t2")

    assert elsewhere.seen == []


def test_more_than_three_redirects_fail_the_poll(hosts):
    api, regional, _ = hosts
    for n in range(4):
        api.redirect(f"/hop{n}", f"/hop{n + 1}")
    api.answer("/hop4", {"id": "t3", "status": "Pending"})

    with pytest.raises(BFLError, match="more than 3"):
        _client(api).get_result("t3", f"{api.url}/hop0")

    assert [path for path, _ in api.seen] == ["/hop0", "/hop1", "/hop2", "/hop3"]


def test_three_redirects_are_followed(hosts):
    api, _, _ = hosts
    for n in range(3):
        api.redirect(f"/hop{n}", f"/hop{n + 1}", status=301 + n)
    api.answer("/hop3", {"id": "t4", "status": "Pending"})

    assert _client(api).get_result("t4", f"{api.url}/hop0")["status"] == "Pending"


ALLOWLIST = tuple(parse_host_pattern(p) for p in ("api.bfl.ai", "api.*.bfl.ai", "127.0.0.1:8901"))


@pytest.mark.parametrize("location", [
    "http://api.eu.bfl.ai/v1/get_result?id=x",  # a pattern host over plain http
    "https://api.eu.bfl.ai:8443/v1/get_result?id=x",  # another port
    "https://evil.example/v1/get_result?id=x",
    "https://api.bfl.ai.evil.example/x",
    "https://user@api.bfl.ai/x",
    "https://localhost/x",
    "ftp://api.bfl.ai/x",
    "http://127.0.0.1:8902/x",
    "",
])
def test_redirect_targets_the_key_must_not_go_to(location):
    with pytest.raises(HostNotAllowed):
        redirect_target("https://api.bfl.ai/v1/get_result?id=x", location, ALLOWLIST)


def test_redirect_targets_it_may_go_to():
    assert redirect_target("http://127.0.0.1:8901/a", "/b?id=1", ALLOWLIST).url == "http://127.0.0.1:8901/b?id=1"


def test_a_sweep_poll_redirected_off_the_allowlist_is_one_warning_per_job_not_a_traceback(hosts, make_services,
                                                                                         caplog):
    api, _, elsewhere = hosts
    api.redirect("/poll?id=t9", f"{elsewhere.url}/steal?id=t9")
    svc = make_services(11, BFL_API_BASE=api.url, API_HOST_ALLOWLIST=f"127.0.0.1:{api.port}")
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="t9", created_at=now, updated_at=now,
                                 submitted_at=now, polling_url=f"{api.url}/poll?id=t9", account="default"), due=now)

    with caplog.at_level(logging.DEBUG):
        outcomes = [checking.poll_submitted(svc, svc.jobs.get(job.id), time.time()) for _ in range(3)]

    assert outcomes == [CheckOutcome.RESCHEDULED] * 3
    assert elsewhere.seen == []
    mine = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage(), r.job_id) for r in mine] == [
        ("fluxhook.checking", "poll redirected off the allowlist; not followed", job.id)]
    assert all(r.exc_info is None for r in caplog.records)
    after = svc.jobs.get(job.id)
    assert after.status == st.SUBMITTED and after.polls == 3


def _accounts(eu: Host, us: Host, *allowed: Host) -> tuple[BFLClient, BFLClient]:
    """The clients of two accounts, eu and us, each at its own host, with every host in ``allowed`` allowed."""
    config = Config.from_env({
        "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456",
        "BFL_ACCOUNTS": "eu,us", "BFL_EU_API_KEY": "eu-key", "BFL_EU_API_BASE": eu.url,
        "BFL_US_API_KEY": "us-key", "BFL_US_API_BASE": us.url,
        "API_HOST_ALLOWLIST": ",".join(f"127.0.0.1:{h.port}" for h in allowed),
    })
    return tuple(BFLClient(config, HTTPClient(), attempts=1, sleep=lambda seconds: None, account=account)
                 for account in config.accounts)


def test_a_poll_never_carries_one_accounts_key_to_another_accounts_endpoint(hosts):
    eu, us, regional = hosts
    eu_client, us_client = _accounts(eu, us, eu, us, regional)
    eu.answer("/v1/get_result?id=t5", {"id": "t5", "status": "Pending"})
    eu.redirect("/v1/get_result?id=t6", f"{us.url}/v1/get_result?id=t6")
    us.answer("/v1/get_result?id=t7", {"id": "t7", "status": "Pending"})

    # A tracked task's polling_url on us's endpoint: eu's own endpoint is asked instead.
    assert eu_client.get_result("t5", f"{us.url}/v1/get_result?id=t5")["status"] == "Pending"
    with pytest.raises(BFLError):  # nor does a redirect take eu's key there
        eu_client.get_result("t6")
    # A host of the allowlist that is no account's endpoint still takes the key (BFL's regional hosts).
    regional.answer("/v1/get_result?id=t8", {"id": "t8", "status": "Pending"})
    assert eu_client.get_result("t8", f"{regional.url}/v1/get_result?id=t8")["status"] == "Pending"
    assert us_client.get_result("t7", f"{us.url}/v1/get_result?id=t7")["status"] == "Pending"

    assert us.seen == [("/v1/get_result?id=t7", "us-key")]
    assert eu.seen == [("/v1/get_result?id=t5", "eu-key"), ("/v1/get_result?id=t6", "eu-key")]
    assert regional.seen == [("/v1/get_result?id=t8", "eu-key")]
