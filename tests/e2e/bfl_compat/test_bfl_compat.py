"""The BFL-compatible API over HTTP, used the way BFL's docs show it: plain ``requests``, ``x-key``, the
``polling_url``, the app's own ``webhook_url`` (received by a real local HTTP server), against the Procfile's
web and worker processes and the simulator."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import redis
import requests

from conftest import API, API_TOKEN
from devtools.processes import free_port, wait_until
from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import delivering, notifications
from fluxhook.lifecycle.steps import app_webhooks
from fluxhook.store.deliveries import member_message
from fluxhook.store.keys import KEYS
from helpers import answer, assert_error, serve, stack_on_db
from key_helpers import make_key

DB = 13
WEBHOOK_SECRET = "the-apps-own-secret-0451"


@dataclass
class AppHooks:
    """The app's webhook receiver: records each POST (headers lowercased) and answers 200."""

    port: int
    calls: list[tuple[str, dict, bytes]] = field(default_factory=list)
    # Answers 500 this many times to a path before 200.
    failures: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, path: str, timeout: float = 30.0) -> tuple[dict, dict]:
        def found():
            with self.lock:
                hits = [(h, json.loads(b)) for p, h, b in self.calls if p == path]
            return hits[0] if hits else None
        return wait_until(found, timeout=timeout, interval=0.05, message=f"the app's webhook {path}")


@pytest.fixture(scope="module")
def app_hooks():
    hooks = AppHooks(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with hooks.lock:
                hooks.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                failing = hooks.failures.get(self.path, 0)
                hooks.failures[self.path] = max(0, failing - 1)
            answer(self, 500 if failing else 200, b"ok")

        def log_message(self, *args):
            pass

    server = serve(hooks.port, Handler)
    yield hooks
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def compat_stack(redis_server, simulator, _spies, app_hooks, tmp_path_factory):
    """The Procfile's processes, the app's webhook host allowed (NOTIFY_HOST_ALLOWLIST), on a database of its own."""
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("compat-stack")), DB,
                     NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{app_hooks.port}") as running:
        yield running


@pytest.fixture()
def base(compat_stack, sim) -> str:
    return compat_stack.base_url


def bfl_headers(key: str = API_TOKEN) -> dict:
    return {"accept": "application/json", "x-key": key, "Content-Type": "application/json"}


def poll_until_done(polling_url: str, key: str = API_TOKEN, timeout: float = 40.0) -> tuple[dict, list[str]]:
    """Poll as BFL's docs do until the status is no longer a running word; the last answer and every word seen."""
    words: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = requests.get(polling_url, headers={"accept": "application/json", "x-key": key}, timeout=10)
        answered.raise_for_status()
        result = answered.json()
        words.append(result["status"])
        if result["status"] in ("Ready", "Error", "Failed", "Request Moderated", "Content Moderated",
                                "Task not found"):
            return result, words
        time.sleep(0.1)
    raise AssertionError(f"still running after {timeout} s: {words[-5:]}")


def test_an_image_the_way_bfls_docs_show_it(base):
    submitted = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(),
                              json={"prompt": "a lighthouse at dusk", "width": 1024, "height": 768, "seed": 7,
                                    "output_format": "jpeg"},
                              timeout=30)
    assert submitted.status_code == 200, submitted.text
    task = submitted.json()
    assert set(task) == {"id", "polling_url", "cost", "input_mp", "output_mp"}
    assert task["polling_url"] == f"{base}/v1/get_result?id={task['id']}"
    assert task["cost"] == 3.0 and task["output_mp"] == 0.75  # BFL's price, as its answer gave it

    result, words = poll_until_done(task["polling_url"])
    assert result["status"] == "Ready", result
    assert set(words[:-1]) <= {"Pending"}
    assert set(result) == {"id", "status", "result", "progress", "details", "preview"}
    sample = result["result"]["sample"]
    assert sample.startswith(f"{base}/v1/jobs/{task['id']}/image?token=")  # fluxhook's link, not BFL's
    assert (result["result"]["prompt"], result["result"]["seed"]) == ("a lighthouse at dusk", 7)
    image = requests.get(sample, timeout=10)  # no header, as an <img> tag would
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"

    # The job is like any other in fluxhook's own API.
    job = API(base).job(task["id"])
    assert job["status"] == "stored" and job["model"] == "flux-2-pro"
    assert job["image"]["sha256"] == hashlib.sha256(image.content).hexdigest()
    assert job["cost"] == {"credits": 3.0, "input_mp": 0.0, "output_mp": 0.75}


def test_a_flux_3_video_with_the_apps_own_webhook(base, app_hooks, compat_stack):
    body = {"mode": "t2v", "prompt": "a fox runs through dawn mist", "aspect_ratio": "16:9", "duration": 5,
            "resolution": "hd", "webhook_url": app_hooks.url("/bfl/video"), "webhook_secret": WEBHOOK_SECRET}
    submitted = requests.post(f"{base}/v1/flux-3-video", headers=bfl_headers(), json=body, timeout=30)
    assert submitted.status_code == 200, submitted.text
    task = submitted.json()
    # Neither the app's webhook nor its secret went to BFL: it knows fluxhook's own callback only.
    job = API(base).job(task["id"])
    sim_task = requests.get(f"{compat_stack.env['BFL_API_BASE']}/_sim/tasks/{job['bfl_id']}", timeout=10).json()
    assert app_hooks.url("/bfl/video") not in json.dumps(sim_task) and WEBHOOK_SECRET not in json.dumps(sim_task)
    # Nor is its secret in the clear in Redis.
    record = redis.Redis.from_url(compat_stack.env["REDIS_URL"]).hgetall(KEYS.job(task["id"]))
    assert WEBHOOK_SECRET.encode() not in b"".join(k + v for k, v in record.items())

    result, words = poll_until_done(task["polling_url"], timeout=60)
    assert result["status"] == "Ready", result
    assert set(words[:-1]) <= {"Pending", "Reasoning", "Generating"}
    video = requests.get(result["result"]["sample"], timeout=10)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"

    headers, sent = app_hooks.wait_for("/bfl/video")
    assert headers["x-webhook-secret"] == WEBHOOK_SECRET
    assert (sent["id"], sent["status"]) == (task["id"], "Ready")
    assert f"/v1/jobs/{task['id']}/video?token=" in sent["result"]["sample"]
    assert requests.get(sent["result"]["sample"], timeout=10).content == video.content
    for log in ("web.log", "worker.log"):
        assert WEBHOOK_SECRET not in (compat_stack.var_dir / log).read_text()


def test_the_apps_webhook_hears_of_an_error_too(base, app_hooks, sim):
    answered = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(),
                             json={"prompt": "[error] a broken one", "webhook_url": app_hooks.url("/bfl/error")},
                             timeout=30)
    assert answered.status_code == 200, answered.text
    result, _ = poll_until_done(answered.json()["polling_url"])
    assert result["status"] == "Error" and result["result"] is None
    assert result["details"]["code"] == "bfl_error"
    headers, sent = app_hooks.wait_for("/bfl/error")
    assert "x-webhook-secret" not in headers  # the app gave none
    assert {k: v for k, v in sent.items() if k not in ("timestamp", "error", "message")} == {
        k: v for k, v in result.items() if k != "preview"}


def test_moderation_is_told_in_bfls_words(base, sim):
    answered = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(),
                             json={"prompt": "[request-moderated] no"}, timeout=30)
    result, _ = poll_until_done(answered.json()["polling_url"])
    assert result["status"] == "Request Moderated"


def test_a_webhook_host_that_is_not_allowed_is_refused_and_creates_nothing(base):
    api = API(base)
    before = _job_ids(api)
    answered = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(),
                             json={"prompt": "p", "webhook_url": "http://127.0.0.1:1/elsewhere"}, timeout=10)
    assert answered.status_code == 422
    assert "NOTIFY_HOST_ALLOWLIST" in answered.json()["detail"]
    assert _job_ids(api) == before


def _job_ids(api: API) -> list[str]:
    # Ids, not whole jobs: another test's job may change meanwhile (a running video's progress, its signed links).
    return [job["id"] for job in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]]


def test_bfls_own_refusals_pass_through_in_its_shape(base, sim):
    sim.settings(any_model=False)  # BFL's own model list, as `make run` has it
    unknown = requests.post(f"{base}/v1/flux-2-pr0", headers=bfl_headers(), json={"prompt": "typo"}, timeout=10)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not Found"})
    big = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(), json={"prompt": "p", "width": "big"},
                        timeout=10)
    assert big.status_code == 422
    [error] = big.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "width"], "int_parsing")
    extra = requests.post(f"{base}/v1/flux-3-video", headers=bfl_headers(), json={"prompt": "p", "fps": 60},
                          timeout=10)
    assert extra.status_code == 422
    assert [e["msg"] for e in extra.json()["detail"]] == ["Field required", "Extra inputs are not permitted"]
    not_json = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(), data=b"[1, 2]", timeout=10)
    assert not_json.status_code == 422 and isinstance(not_json.json()["detail"], str)


def test_keys_the_bfl_way_and_fluxhooks_way(base):
    body = {"prompt": "a key test [pending]"}
    assert requests.post(f"{base}/v1/flux-2-pro", json=body, timeout=10).status_code == 401
    refused = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers("not-a-token"), json=body, timeout=10)
    assert refused.status_code == 403 and set(refused.json()) == {"detail"}
    bearer = requests.post(f"{base}/v1/flux-2-pro", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert bearer.status_code == 200
    # x-key works on fluxhook's own routes too.
    own = requests.get(f"{base}/v1/jobs/{bearer.json()['id']}", headers={"x-key": API_TOKEN}, timeout=10)
    assert own.status_code == 200 and own.json()["prompt"] == "a key test [pending]"
    assert requests.get(f"{base}/v1/get_result", params={"id": "x"}, timeout=10).status_code == 401


def test_an_unknown_id_is_task_not_found(base):
    for task_id in ("job_01JZZZZZZZZZZZZZZZZZZZZZZZ", "some-bfl-id"):
        answered = requests.get(f"{base}/v1/get_result", params={"id": task_id}, headers=bfl_headers(), timeout=10)
        assert (answered.status_code, answered.json()) == (200, {"id": task_id, "status": "Task not found"})
    missing = requests.get(f"{base}/v1/get_result", headers=bfl_headers(), timeout=10)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["query", "id"]


def test_an_idempotency_key_sends_one_task(base, sim):
    headers = {**bfl_headers(), "Idempotency-Key": "compat-once-1"}
    body = {"prompt": "[pending] once only"}
    first = requests.post(f"{base}/v1/flux-2-pro", headers=headers, json=body, timeout=10)
    again = requests.post(f"{base}/v1/flux-2-pro", json=body, timeout=10,
                          headers={"Idempotency-Key": "compat-once-1", "Authorization": f"Bearer {API_TOKEN}"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert sim.stats()["submitted"] == 1
    other = requests.post(f"{base}/v1/flux-2-pro", headers=headers, json={"prompt": "[pending] other"}, timeout=10)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]


def test_get_result_may_wait_for_the_end(base, sim):
    task = requests.post(f"{base}/v1/flux-2-pro", headers=bfl_headers(), json={"prompt": "waited for"},
                         timeout=30).json()
    answered = requests.get(task["polling_url"], headers={**bfl_headers(), "Prefer": "wait=20"}, timeout=30)
    assert answered.json()["status"] == "Ready" and answered.headers["Preference-Applied"] == "wait=20"


def test_fluxhooks_own_paths_are_not_models(base):
    # POST /v1/usage is fluxhook's route (GET only), not a model named "usage".
    assert_error(requests.post(f"{base}/v1/usage", headers={"Authorization": f"Bearer {API_TOKEN}"},
                               json={"prompt": "p"}, timeout=10), 405)
    assert requests.post(f"{base}/v1/Flux-2-Pro", headers=bfl_headers(), json={"prompt": "p"},
                         timeout=10).status_code == 404


def test_credits_are_bfls_balance(base, sim):
    answered = requests.get(f"{base}/v1/credits", headers=bfl_headers(), timeout=10)
    assert answered.status_code == 200, answered.text
    assert isinstance(answered.json()["credits"], (int, float)) and set(answered.json()) == {"credits"}


def test_credits_tell_an_app_key_of_its_own_limit_when_it_has_one(base):
    admin = API(base)
    unlimited, _ = make_key(admin)
    limited, _ = make_key(admin, daily_credits=40)

    def credits(key: dict) -> dict:
        answered = requests.get(f"{base}/v1/credits", headers={"x-key": key["key"]}, timeout=10)
        assert answered.status_code == 200, answered.text
        return answered.json()

    # Without daily_credits of its own, what the accounts it may use have left.
    assert isinstance(credits(unlimited)["credits"], (int, float))
    assert credits(limited) == {"credits": 40.0}


def test_a_budget_reached_is_a_402_in_bfls_shape(local_app, sim):
    api, _ = local_app(14, BFL_DAILY_CREDIT_LIMIT="0.01")
    first = requests.post(f"{api.base_url}/v1/flux-2-pro", headers=bfl_headers(), json={"prompt": "[pending] a"},
                          timeout=10)
    assert first.status_code == 200, first.text  # the day's first submission holds what is left of the budget
    answered = requests.post(f"{api.base_url}/v1/flux-2-pro", headers=bfl_headers(), json={"prompt": "[pending] b"},
                             timeout=10)
    assert answered.status_code == 402, answered.text
    assert answered.json()["detail"].startswith("budget_exceeded: ")
    assert [job["id"] for job in api.get("/v1/jobs").json()["jobs"]] == [first.json()["id"]]


def test_a_retry_sends_only_the_call_not_yet_delivered(make_services, app_hooks):
    """A job with both a notify_url and the app's webhook: a message each; a retry sends only what failed."""
    notify_secret = "whsec_" + "Zmx1eGhvb2stY29tcGF0LXRlc3Qta2V5LTMyLWJ5dGU="
    svc = make_services(15, NOTIFY_SECRET=notify_secret, NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{app_hooks.port}")
    config: Config = svc.config
    _, hook = app_webhooks.split_body({"prompt": "p", "webhook_url": app_hooks.url("/retry/app"),
                                       "webhook_secret": WEBHOOK_SECRET}, config)
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}", prompt="p",
                                 created_at=now, updated_at=now, submitted_at=now,
                                 notify_url=app_hooks.url("/retry/notify"), app_webhook_url=hook.url,
                                 app_webhook_secret=hook.sealed_secret))
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert svc.redis.zscore(KEYS.outbox, job.id) is not None  # the app's webhook rides the notification outbox
    app_hooks.failures["/retry/app"] = 1
    notifications.enter(svc, [job.id], time.time())
    taken = {member_message(attempt.member): attempt for attempt in notifications.due_attempts(svc, 8)}
    app, notify = taken[f"msg_{job.id}_bfl"], taken[f"msg_{job.id}"]
    assert delivering.deliver(svc, notify) == DeliveryOutcome.DELIVERED
    assert delivering.deliver(svc, app) == DeliveryOutcome.RETRY
    [app] = notifications.due_attempts(svc, 8, time.time() + 60)  # its retry, once due
    assert delivering.deliver(svc, app) == DeliveryOutcome.DELIVERED
    paths = [path for path, _, _ in app_hooks.calls if path.startswith("/retry/")]
    assert paths == ["/retry/notify", "/retry/app", "/retry/app"]  # the notification is not sent twice
    headers, sent = app_hooks.wait_for("/retry/app")
    assert headers["x-webhook-secret"] == WEBHOOK_SECRET and "webhook-signature" not in headers
    assert (sent["id"], sent["status"], sent["details"]["code"]) == (job.id, "Error", "timeout")
    done = svc.jobs.get(job.id)
    assert done.notified_at is not None and done.app_notified_at is not None
    assert delivering.deliver(svc, notify) == delivering.deliver(svc, app) == DeliveryOutcome.SKIPPED
    assert [m.state for m in svc.store.deliveries.of_job(job.id)] == ["delivered", "delivered"]


def test_a_body_without_a_content_type_is_read_as_json_as_bfl_does(base):
    body = json.dumps({"prompt": "a lighthouse, no header", "width": 512, "height": 512}).encode()
    submitted = requests.post(f"{base}/v1/flux-2-pro", headers={"x-key": API_TOKEN}, data=body, timeout=30)
    assert submitted.status_code == 200, submitted.text
    assert API(base).job(submitted.json()["id"])["prompt"] == "a lighthouse, no header"
    typed_otherwise = requests.post(f"{base}/v1/flux-2-pro", data=body, timeout=30,
                                    headers={"x-key": API_TOKEN, "Content-Type": "text/plain"})
    assert typed_otherwise.status_code == 422 and "Content-Type" in typed_otherwise.json()["detail"]
    keyed = {"x-key": API_TOKEN, "Idempotency-Key": "compat-untyped-1"}
    once = requests.post(f"{base}/v1/flux-2-pro", headers=keyed, data=body, timeout=30)
    again = requests.post(f"{base}/v1/flux-2-pro", headers=keyed, data=body, timeout=30)
    assert once.status_code == again.status_code == 200, (once.text, again.text)
    assert again.json()["id"] == once.json()["id"] and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("method, path, detail", [
    ("GET", "/v1/nothing", "Not Found"),
    ("GET", "/v1/job", "Not Found: did you mean /v1/jobs?"),
    ("GET", "/v1/job/job_01JZZZZZZZZZZZZZZZZZZZZZZZ", "Not Found: did you mean /v1/jobs/job_01JZZZZZZZZZZZZZZZZZZZZZZZ?"),
    ("DELETE", "/v1/key/key_abc", "Not Found: did you mean /v1/keys/key_abc?"),
    ("PUT", "/v1/modles", "Not Found: did you mean /v1/models?"),
    # A model's name with its '/' %-escaped is a path BFL does not serve, on POST and on any other method alike.
    ("GET", "/v1/flux-tools%2Fvideo-edit-v1", "Not Found"),
    # What does not read as an id is not named back.
    ("GET", "/v1/job/%20call%20evil.example", "Not Found: did you mean /v1/jobs/...?"),
])
def test_an_unknown_path_is_bfls_404_whatever_the_method(base, sim, method, path, detail):
    answered = requests.request(method, f"{base}{path}", headers=bfl_headers(), timeout=10)
    assert (answered.status_code, answered.json()) == (404, {"detail": detail})
    assert sim.stats()["submitted"] == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_models_path_takes_post_alone_as_bfls_does(base, sim, method):
    answered = requests.request(method, f"{base}/v1/flux-2-pro", headers=bfl_headers(), timeout=10)
    assert (answered.status_code, answered.json()) == (405, {"detail": "Method Not Allowed"})
    assert answered.headers["Allow"] == "POST"
    assert sim.stats()["submitted"] == 0


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "compat-unknown-model"}, {"Idempotency-Key": "k" * 300},
                                     {"Content-Type": "text/plain"}])
@pytest.mark.parametrize("body", [b"", b"{}", b"not json", b'{"prompt": "a fox"}'])
def test_a_model_bfl_does_not_serve_is_404_whatever_the_body(base, sim, body, headers):
    def newest() -> list[str]:  # ids only: an earlier test's job may still change status meanwhile
        return [job["id"] for job in API(base).get("/v1/jobs", params={"limit": 1}).json()["jobs"]]

    before = newest()
    answered = requests.post(f"{base}/v1/flux-9-mega", headers={"x-key": API_TOKEN, **headers}, data=body, timeout=10)
    assert (answered.status_code, answered.json()) == (404, {"detail": "Not Found"})
    assert sim.stats()["submitted"] == 0
    assert newest() == before  # nothing created
