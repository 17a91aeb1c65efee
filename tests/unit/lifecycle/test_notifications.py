"""Notifications to the user's app: the job JSON, signed the Standard Webhooks way, at least once.

End to end on a stack of its own (Redis database 10) whose NOTIFY_URL is a real HTTP receiver on
127.0.0.1, listed by exact host:port in NOTIFY_HOST_ALLOWLIST; every signature is checked with
``standardwebhooks``, the Standard Webhooks reference library. Then the outbox and the task
in-process (database 11), and the pure parts: signing, answers, the retry schedule, configuration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import API
from devtools.processes import free_port, wait_until
from fluxhook.core import transitions as st
from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, InvalidRequest, RetryableError
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import Outcome
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.enqueueing import NOTIFY_RETRIES, NOTIFY_RETRY_CAP, notify_retry, notify_task_id
from fluxhook.lifecycle.sweep import drain_notifications
from fluxhook.store.keys import KEYS
from helpers import stack_on_db

SECRET = "whsec_" + base64.b64encode(b"fluxhook-notify-test-key-32-byte").decode()


# -- a receiver of notifications: a real HTTP server that records every POST ---------------------

@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def job(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records POSTs; answers 200, or 500 while ``failures`` lasts, or a status scripted per path."""

    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks/fluxhook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def for_job(self, job_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.headers.get("webhook-id") == f"msg_{job_id}"]

    def wait_for(self, job_id: str, count: int = 1, timeout: float = 30.0) -> list[Delivery]:
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(self.for_job(job_id)),
                          timeout=timeout, interval=0.05, message=f"{count} notification(s) of {job_id}")

    def answer(self, path: str) -> int:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                return 500
        return self.statuses.get(path, 200)


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.answer(self.path)
            with receiver.lock:
                receiver.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                    body, time.time()))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def receivers():
    """Two receivers: the default NOTIFY_URL's, and another one a job may name itself."""
    made = []
    for _ in range(2):
        receiver = Receiver(port=free_port())
        server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append((receiver, server))
    yield [receiver for receiver, _ in made]
    for _, server in made:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def hooks(receivers) -> Receiver:
    receiver = receivers[0]
    receiver.failures, receiver.statuses = 0, {}
    return receiver


@pytest.fixture()
def other_hooks(receivers) -> Receiver:
    receiver = receivers[1]
    receiver.failures, receiver.statuses = 0, {}
    return receiver


# -- a stack of its own, with notifications on ---------------------------------------------------

@pytest.fixture(scope="module")
def notify_stack(redis_server, simulator, _spies, receivers, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("notify-stack")), 10,
                     NOTIFY_URL=receivers[0].url(), NOTIFY_SECRET=SECRET,
                     NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receivers[0].port},127.0.0.1:{receivers[1].port}") as running:
        yield running


@pytest.fixture()
def napi(notify_stack) -> API:
    return API(notify_stack.base_url)


def _verified(delivery: Delivery) -> dict:
    """The body, once the reference library has checked its signature (and timestamp)."""
    return Webhook(SECRET).verify(delivery.body, delivery.headers)


def _without_image_url(job: dict) -> dict:
    job = json.loads(json.dumps(job))
    if job["image"]:
        job["image"].pop("url")
    return job


def test_a_stored_job_notifies_once_with_its_json_and_a_valid_signature(napi, sim, hooks, notify_stack):
    job = napi.submit("a notified fox")
    stored = napi.wait_for(job["id"])
    assert stored["status"] == "stored"
    [delivery] = hooks.wait_for(job["id"])
    assert delivery.path == "/hooks/fluxhook"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["webhook-id"] == f"msg_{job['id']}"
    assert abs(int(delivery.headers["webhook-timestamp"]) - delivery.at) < 5
    assert delivery.headers["webhook-signature"].startswith("v1,")

    body = _verified(delivery)
    # The job JSON exactly as GET /v1/jobs/{id} answers it (the image link is signed at each making).
    assert _without_image_url(body) == _without_image_url(napi.job(job["id"]))
    assert body["image"]["url"].startswith(f"{notify_stack.base_url}/v1/jobs/{job['id']}/image?token=")
    image = requests.get(body["image"]["url"], timeout=10)  # no bearer token: the link is enough
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == body["image"]["sha256"]

    # Delivered: recorded, and never sent again.
    connection = redis.Redis.from_url(notify_stack.env["REDIS_URL"])
    assert wait_until(lambda: connection.hget(KEYS.job(job['id']), "notified_at"), timeout=5)
    assert napi.job(job["id"])["updated_at"] == stored["updated_at"]
    time.sleep(3)
    assert len(hooks.for_job(job["id"])) == 1
    assert connection.zscore(KEYS.outbox, job["id"]) is None


def test_a_failed_job_notifies_too(napi, sim, hooks):
    job = napi.submit("[error] this one fails")
    done = napi.wait_for(job["id"])
    assert done["status"] == "failed"
    [delivery] = hooks.wait_for(job["id"])
    body = _verified(delivery)
    assert (body["status"], body["error"]["code"], body["image"]) == ("failed", "bfl_error", None)
    assert body == napi.job(job["id"])


def test_a_tracked_job_notifies_when_it_ends(napi, sim, hooks):
    response = napi.track("no-such-task-notify")
    assert response.status_code == 201
    job = response.json()
    [delivery] = hooks.wait_for(job["id"], timeout=30)
    body = _verified(delivery)
    assert (body["status"], body["error"]["code"]) == ("failed", "task_not_found")


def test_500_twice_then_200_is_three_deliveries_with_one_webhook_id(napi, sim, hooks, notify_stack):
    hooks.failures = 2
    job = napi.submit("a fox behind a flaky app")
    napi.wait_for(job["id"])
    deliveries = hooks.wait_for(job["id"], count=3, timeout=40)
    assert {d.headers["webhook-id"] for d in deliveries} == {f"msg_{job['id']}"}
    for delivery in deliveries:
        assert _verified(delivery)["id"] == job["id"]  # each attempt signed with its own timestamp
    stamps = [int(d.headers["webhook-timestamp"]) for d in deliveries]
    assert stamps == sorted(stamps)
    # The first retries come within seconds (1-2 s, then 2-4 s, plus the scheduler's polling).
    assert deliveries[2].at - deliveries[0].at < 15
    time.sleep(5)
    assert len(hooks.for_job(job["id"])) == 3  # the 200 ended it

    metrics = requests.get(notify_stack.base_url + "/metrics", timeout=10).text
    assert 'fluxhook_notifications_total{outcome="retry"}' in metrics
    assert 'fluxhook_notifications_total{outcome="delivered"}' in metrics
    # Neither the secret nor a signature reaches a log line.
    signatures = [d.headers["webhook-signature"].split(",", 1)[1] for d in deliveries]
    for log in notify_stack.var_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
        assert not any(signature in text for signature in signatures)


def test_a_job_with_its_own_notify_url_notifies_there(napi, sim, hooks, other_hooks):
    own = other_hooks.url("/mine?token=abc")
    job = napi.submit("a fox with its own hook", notify_url=own)
    napi.wait_for(job["id"])
    [delivery] = other_hooks.wait_for(job["id"])
    assert delivery.path == "/mine?token=abc"
    assert _verified(delivery)["id"] == job["id"]
    tracked = napi.track("own-hook-no-such-task", notify_url=other_hooks.url("/tracked"))
    assert tracked.status_code == 201
    [delivery] = other_hooks.wait_for(tracked.json()["id"], timeout=30)
    assert delivery.path == "/tracked"
    assert hooks.for_job(job["id"]) == [] and hooks.for_job(tracked.json()["id"]) == []


def test_a_4xx_answer_is_not_retried(napi, sim, other_hooks):
    other_hooks.statuses["/gone"] = 410
    job = napi.submit("a fox nobody wants", notify_url=other_hooks.url("/gone"))
    napi.wait_for(job["id"])
    other_hooks.wait_for(job["id"])
    time.sleep(6)  # past the first two retries, had there been any
    assert len(other_hooks.for_job(job["id"])) == 1


@pytest.mark.parametrize("notify_url, why", [
    ("https://elsewhere.example.com/hook", "not in the allowlist"),
    ("http://127.0.0.1:1/hook", "not in the allowlist"),
    ("ftp://127.0.0.1/hook", "http(s) URL"),
    ("https://user:pw@app.example.com/hook", "not allowed"),
    ("http://127.0.0.1/" + "x" * 2048, "2048"),
    (42, "http(s) URL"),
])
def test_a_notify_url_not_allowed_is_refused_and_creates_nothing(napi, sim, notify_url, why):
    before = [j["id"] for j in napi.get("/v1/jobs", params={"limit": 100}).json()["jobs"]]
    stats = sim.stats()
    for response in (napi.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"},
                                                 "notify_url": notify_url}),
                     napi.track("never-tracked-task", notify_url=notify_url)):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "notify_url" in error["message"] and why in error["message"]
    assert [j["id"] for j in napi.get("/v1/jobs", params={"limit": 100}).json()["jobs"]] == before
    assert sim.stats()["submitted"] == stats["submitted"]


def test_without_notify_secret_a_notify_url_is_refused_with_the_reason(api):
    # The session stack has no NOTIFY_SECRET (and no NOTIFY_URL): its jobs notify nobody.
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"},
                                          "notify_url": "https://app.example.com/hook"})
    assert response.status_code == 400
    assert "NOTIFY_SECRET" in response.json()["error"]["message"]


# -- the outbox and the task, in-process on database 11 --------------------------------------------

@pytest.fixture()
def services(make_services, receivers):
    def build(**overrides):
        notifications = {"NOTIFY_URL": receivers[0].url(), "NOTIFY_SECRET": SECRET,
                         "NOTIFY_HOST_ALLOWLIST": f"127.0.0.1:{receivers[0].port}"}
        return make_services(11, **{**notifications, **overrides})

    return build


def _job(svc, notify_url: str | None) -> Job:
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 created_at=now, updated_at=now, submitted_at=now, notify_url=notify_url))
    return job


def _outbox(svc) -> list[str]:
    return [i.decode() for i in svc.redis.zrange(KEYS.outbox, 0, -1)]


def test_a_job_enters_the_outbox_in_the_transition_that_ends_it(services, receivers):
    svc = services()
    notified, silent = _job(svc, receivers[0].url()), _job(svc, None)
    assert svc.jobs.transition(notified.id, st.READY, bfl_status="Ready", result_url="https://x/y.png")
    assert svc.jobs.transition(silent.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert _outbox(svc) == []  # ready is not the end; a job without notify_url has nobody to tell
    assert svc.jobs.transition(notified.id, st.FAILED, error={"code": "download_failed", "message": "x"})
    assert _outbox(svc) == [notified.id]
    # A late event for the ended job changes nothing, and adds nothing.
    svc.redis.zrem(KEYS.outbox, notified.id)
    assert not svc.jobs.transition(notified.id, st.STORED)
    assert _outbox(svc) == []
    # Deleting a job takes it out of the outbox too.
    other = _job(svc, receivers[0].url())
    svc.jobs.transition(other.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(other.id)
    assert _outbox(svc) == []


def test_a_drain_queues_one_task_per_job_even_when_repeated(services, receivers):
    svc = services()
    jobs = [_job(svc, receivers[0].url()) for _ in range(3)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert drain_notifications(svc, now) == 3
    assert _outbox(svc) == [] and svc.control_queue.count == 0
    tasks = svc.queue.get_jobs()
    assert sorted(t.id for t in tasks) == sorted(notify_task_id(j.id) for j in jobs)
    assert {t.func_name for t in tasks} == {"worker.notify.notify_job"}
    assert all(t.retries_left == NOTIFY_RETRIES and t.timeout <= 60 for t in tasks)
    # A crash after queueing but before the outbox was emptied: the ids come back; no second task.
    svc.redis.zadd(KEYS.outbox, {j.id: now for j in jobs})
    assert drain_notifications(svc, now + 1) == 0
    assert _outbox(svc) == [] and svc.queue.count == 3


def test_two_drains_never_take_the_same_job(services, receivers):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert svc.jobs.claim_notifications(now, 10, now + 60) == [job.id]
    assert svc.jobs.claim_notifications(now, 10, now + 60) == []  # held by the first
    # Nobody queued it (a crash): it is taken again once the lease is over.
    assert svc.jobs.claim_notifications(now + 61, 10, now + 121) == [job.id]


def test_the_task_skips_a_deleted_job_and_refuses_a_host_no_longer_allowed(services, receivers, hooks):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(job.id)
    assert notifications.deliver(svc, job.id, last_attempt=False) == Outcome.SKIPPED
    assert not svc.jobs.mark_notified(job.id, time.time())
    assert not svc.redis.exists(KEYS.job(job.id))  # not recreated

    moved = _job(svc, "http://127.0.0.1:1/was-allowed-once")
    svc.jobs.transition(moved.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert notifications.deliver(svc, moved.id, last_attempt=False) == Outcome.HOST_NOT_ALLOWED
    assert hooks.for_job(moved.id) == []


def test_the_task_retries_while_the_app_fails_and_gives_up_on_the_last_attempt(services, receivers, hooks):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    hooks.failures = 2
    with pytest.raises(RetryableError):
        notifications.deliver(svc, job.id, last_attempt=False)
    assert notifications.deliver(svc, job.id, last_attempt=True) == Outcome.EXHAUSTED
    assert svc.jobs.get(job.id).notified_at is None
    assert notifications.deliver(svc, job.id, last_attempt=False) == Outcome.DELIVERED
    assert svc.jobs.get(job.id).notified_at is not None
    assert len(hooks.for_job(job.id)) == 3


def test_an_unreachable_app_is_retried(services):
    port = free_port()  # nothing listens there
    svc = services(NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{port}", NOTIFY_URL=f"http://127.0.0.1:{port}/h")
    job = _job(svc, f"http://127.0.0.1:{port}/h")
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    with pytest.raises(RetryableError):
        notifications.deliver(svc, job.id, last_attempt=False)


# -- pure parts -------------------------------------------------------------------------------------

def test_signature_matches_the_standard_webhooks_test_vector():
    # The example of the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = notifications.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_are_what_a_receiver_verifies():
    body = json.dumps({"id": "job_x", "status": "stored", "note": "ünïcode"}, ensure_ascii=False)
    now = int(time.time())
    headers = notifications.signed_headers(SECRET, "msg_job_x", now, body)
    assert headers["webhook-id"] == "msg_job_x" and headers["webhook-timestamp"] == str(now)
    version, signature = headers["webhook-signature"].split(",", 1)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, f"msg_job_x.{now}.{body}".encode(), hashlib.sha256).digest()
    assert version == "v1" and base64.b64decode(signature) == expected
    assert Webhook(SECRET).verify(body.encode(), headers)["note"] == "ünïcode"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("stored", "failed").encode(), headers)
    other = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body.encode(), headers)


def test_the_webhook_id_is_the_same_for_every_attempt():
    assert notifications.message_id("job_01ABC") == notifications.message_id("job_01ABC") == "msg_job_01ABC"
    assert datetime.fromtimestamp(0, timezone.utc).year == 1970  # timestamps are UTC epoch seconds


@pytest.mark.parametrize("status, outcome", [
    (200, Outcome.DELIVERED), (201, Outcome.DELIVERED), (204, Outcome.DELIVERED),
    (408, Outcome.RETRY), (429, Outcome.RETRY), (500, Outcome.RETRY), (502, Outcome.RETRY),
    (503, Outcome.RETRY),
    (301, Outcome.REJECTED), (302, Outcome.REJECTED), (400, Outcome.REJECTED), (401, Outcome.REJECTED),
    (404, Outcome.REJECTED), (410, Outcome.REJECTED), (422, Outcome.REJECTED),
])
def test_what_an_answer_means(status, outcome):
    assert notifications.outcome_for(status) == outcome


class _Low(random.Random):
    """Every jittered delay at its shortest."""

    def uniform(self, a, b):
        return a


class _High(random.Random):
    def uniform(self, a, b):
        return b


def test_the_retry_schedule_starts_in_seconds_and_spans_over_an_hour():
    shortest = backoff_schedule(NOTIFY_RETRIES, base=2, cap=NOTIFY_RETRY_CAP, rng=_Low())
    longest = backoff_schedule(NOTIFY_RETRIES, base=2, cap=NOTIFY_RETRY_CAP, rng=_High())
    assert longest[:3] == [2, 4, 8] and shortest[:3] == [1, 2, 4]
    assert 3600 < sum(shortest) and sum(longest) < 3 * 3600
    for _ in range(50):
        retry = notify_retry()
        assert retry.max == NOTIFY_RETRIES and sum(retry.intervals) > 3600 and retry.intervals[0] <= 2


# -- configuration and the API's validation ------------------------------------------------------------

BASE = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "SECRET_KEY": "0123456789abcdef",
        "API_TOKENS": "token-aaaaaaaa"}


def _problems(**env) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, **env})
    return info.value.problems


def test_notifications_are_off_by_default():
    config = Config.from_env(BASE)
    assert (config.notify_url, config.notify_secret, config.notify_host_allowlist) == (None, None, ())


def test_notify_url_defaults_the_allowlist_to_its_host():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/hooks", "NOTIFY_SECRET": SECRET})
    assert config.notify_url == "https://app.example.com/hooks" and config.notify_secret == SECRET
    assert [str(p) for p in config.notify_host_allowlist] == ["app.example.com"]
    assert SECRET not in repr(config)


def test_notify_host_allowlist_uses_the_allowlist_syntax():
    config = Config.from_env({**BASE, "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "*.example.com, 127.0.0.1:9000"})
    assert [str(p) for p in config.notify_host_allowlist] == ["*.example.com", "127.0.0.1:9000"]
    assert config.notify_url is None


@pytest.mark.parametrize("env, variable, words", [
    ({"NOTIFY_URL": "https://app.example.com/h"}, "NOTIFY_SECRET", "required"),
    ({"NOTIFY_SECRET": "not-a-whsec-secret"}, "NOTIFY_SECRET", "whsec_"),
    ({"NOTIFY_SECRET": "whsec_" + base64.b64encode(b"short").decode()}, "NOTIFY_SECRET", "24 to 64"),
    ({"NOTIFY_SECRET": "whsec_not base64!!"}, "NOTIFY_SECRET", "base64"),
    ({"NOTIFY_URL": "ftp://app.example.com/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "http"),
    ({"NOTIFY_URL": "http://127.0.0.1:9000/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "host:port"),
    ({"NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
      "NOTIFY_HOST_ALLOWLIST": "other.example.com"}, "NOTIFY_URL", "NOTIFY_HOST_ALLOWLIST"),
    ({"NOTIFY_HOST_ALLOWLIST": "*.com"}, "NOTIFY_HOST_ALLOWLIST", "wildcard"),
])
def test_each_bad_notify_setting_is_one_line_naming_it(env, variable, words):
    problems = _problems(**env)
    assert len(problems) == 1 and problems[0].startswith(f"{variable}: ") and words in problems[0], problems


def test_a_bad_notify_secret_is_not_repeated_in_the_problem_line():
    secret = "whsec_tooshortsecretvalue"
    assert not any(secret in line or "tooshortsecretvalue" in line for line in _problems(NOTIFY_SECRET=secret))


def test_unpadded_and_64_byte_secrets_are_accepted():
    unpadded = "whsec_" + base64.b64encode(os.urandom(25)).decode().rstrip("=")
    Config.from_env({**BASE, "NOTIFY_SECRET": unpadded})
    Config.from_env({**BASE, "NOTIFY_SECRET": "whsec_" + base64.b64encode(os.urandom(64)).decode()})
    assert "24 to 64" in _problems(NOTIFY_SECRET="whsec_" + base64.b64encode(os.urandom(65)).decode())[0]


def test_the_api_uses_the_default_unless_a_job_names_its_own():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "app.example.com,*.hooks.example.com"})
    assert notifications.requested_url(None, config) == "https://app.example.com/h"
    assert notifications.requested_url("https://a.hooks.example.com/x?y=1", config) == "https://a.hooks.example.com/x?y=1"
    for bad in ("http://a.hooks.example.com/x", "https://a.b.hooks.example.com/", "https://evil.example.net/",
                "https://app.example.com:8443/", "ftp://app.example.com/", "", "https://app.example.com/a b", 7, [],
                "https://app.example.com/" + "x" * 2048):
        with pytest.raises(InvalidRequest):
            notifications.requested_url(bad, config)
    assert notifications.requested_url(None, Config.from_env(BASE)) is None
    with pytest.raises(InvalidRequest, match="NOTIFY_SECRET"):
        notifications.requested_url("https://app.example.com/h",
                                    Config.from_env({**BASE, "NOTIFY_HOST_ALLOWLIST": "app.example.com"}))
