"""Receiving BFL's callbacks through the Procfile's web and worker processes, over real HTTP.

Jobs are submitted with ``[pending]`` prompts so the simulator keeps them Pending and the
test sends the callbacks itself. Every refusal reads the job back and checks nothing changed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from werkzeug.serving import make_server

from conftest import API, SECRET_KEY, STATIC_SECRET, ready_payload, serve_in_thread, service_env
from devtools.processes import free_port
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import signing
from fluxhook.core.config import Config
from helpers import assert_error_status, wait_sim_ready
from receiver import create_app

MAX_CALLBACK_BYTES = 1024 * 1024


# -- helpers ----------------------------------------------------------------


def png_bytes(width: int = 12, height: int = 8, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def serve_png(spy, name: str, **kwargs) -> tuple[str, bytes]:
    """A PNG on the allowlisted spy host; returns its URL and bytes."""
    data = png_bytes(**kwargs)
    return spy.route(f"/{name}.png", body=data, headers={"Content-Type": "image/png"}), data


def snapshot(job: dict) -> dict:
    """What a refused callback must leave untouched."""
    keys = ("status", "bfl_status", "source", "image", "error", "completed_at", "attempts")
    return {key: job[key] for key in keys}


def static_post(api: API, payload: dict | bytes, *, secret: str | None = STATIC_SECRET,
                signature: bool = False, headers: dict | None = None) -> requests.Response:
    """POST to the static callback URL ``/webhooks/bfl``, proving ``secret`` as BFL would."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json"}
    if secret is not None:
        if signature:
            sent["X-BFL-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        else:
            sent["X-Webhook-Secret"] = secret
    sent.update(headers or {})
    return requests.post(api.base_url + "/webhooks/bfl", data=body, headers=sent, timeout=10)


def sim_task(sim, prompt: str = "x") -> dict:
    """A task submitted straight to the simulator, as an app that tracks it would (no webhook_url)."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


# -- refusals on a job's own URL ---------------------------------------------


def _post_to_token(api: API, token: str, body: bytes, job_id: str) -> requests.Response:
    secret = signing.job_webhook_secret(SECRET_KEY, job_id)
    return requests.post(f"{api.base_url}/webhooks/bfl/{token}", data=body,
                         headers={"Content-Type": "application/json", "X-Webhook-Secret": secret}, timeout=10)


def _refusal(case: str, api: API, job: dict, other: dict, payload: dict) -> requests.Response:
    job_id, bfl_id = job["id"], job["bfl_id"]
    body = json.dumps(payload).encode()
    if case == "garbage_token":
        return _post_to_token(api, "not-a-token-at-all", body, job_id)
    if case == "tampered_token":
        token = signing.webhook_token(SECRET_KEY, job_id)
        return _post_to_token(api, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), body, job_id)
    if case == "token_of_another_secret_key":
        return _post_to_token(api, signing.webhook_token("another-key-0123456789abcdef", job_id), body, job_id)
    if case == "image_token_as_webhook_token":
        return _post_to_token(api, signing.file_token(SECRET_KEY, job_id, "image"), body, job_id)
    if case == "wrong_secret":
        return api.callback(job_id, payload, secret="not-the-secret-of-this-job")
    if case == "wrong_signature":
        return api.callback(job_id, payload, secret="not-the-secret-of-this-job", signature=True)
    if case == "signature_over_other_body":
        secret = signing.job_webhook_secret(SECRET_KEY, job_id)
        forged = "sha256=" + hmac.new(secret.encode(), b"{}", hashlib.sha256).hexdigest()
        return api.callback(job_id, payload, secret=None, headers={"X-BFL-Signature": forged})
    if case == "malformed_signature":
        return api.callback(job_id, payload, secret=None, headers={"X-BFL-Signature": "md5=abc"})
    if case == "right_secret_wrong_signature":
        return api.callback(job_id, payload, headers={"X-BFL-Signature": "sha256=" + "0" * 64})
    if case == "payload_for_another_task":
        return api.callback(job_id, dict(payload, id=other["bfl_id"]))
    if case == "secret_of_another_job":
        return api.callback(job_id, payload, secret=signing.job_webhook_secret(SECRET_KEY, other["id"]))
    if case == "other_jobs_url_and_secret":
        # Job B's valid URL and secret, carrying a callback about job A's task.
        return api.callback(other["id"], dict(payload, id=bfl_id))
    raise AssertionError(case)


REFUSALS = [
    "garbage_token", "tampered_token", "token_of_another_secret_key", "image_token_as_webhook_token",
    "wrong_secret", "wrong_signature", "signature_over_other_body", "malformed_signature",
    "right_secret_wrong_signature", "payload_for_another_task", "secret_of_another_job",
    "other_jobs_url_and_secret",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_unauthenticated_callback_is_refused_and_changes_nothing(api, sim, spy, case):
    job, other = api.submit("[pending] a"), api.submit("[pending] b")
    before, other_before = snapshot(api.job(job["id"])), snapshot(api.job(other["id"]))
    url, _ = serve_png(spy, "refused")

    response = _refusal(case, api, job, other, ready_payload(job["bfl_id"], url))

    assert_error_status(response, 401)
    assert snapshot(api.job(job["id"])) == before
    assert snapshot(api.job(other["id"])) == other_before
    assert before["attempts"]["webhooks"] == 0
    assert spy.hits == []


def _padded(payload: dict, size: int) -> bytes:
    """``payload`` as JSON of exactly ``size`` bytes (padding in an extra field)."""
    base = json.dumps(dict(payload, pad=""), separators=(",", ":")).encode()
    body = json.dumps(dict(payload, pad="x" * (size - len(base))), separators=(",", ":")).encode()
    assert len(body) == size
    return body


BAD_BODIES = {
    "not_json": (b"this is not json", 400),
    "truncated_json": (b'{"id": "abc", "status": "Ready"', 400),
    "json_array": (b'[{"status": "Ready"}]', 400),
    "json_string": (b'"Ready"', 400),
    "missing_status": (None, 400),
    "missing_id": (None, 400),
    "status_not_a_string": (None, 400),
    "empty_status": (None, 400),
    "ready_without_sample": (None, 400),
    "ready_with_empty_sample": (None, 400),
    "over_1_mib": (None, 413),
}


def _bad_body(case: str, bfl_id: str, url: str) -> bytes:
    raw, _ = BAD_BODIES[case]
    if raw is not None:
        return raw
    ready = ready_payload(bfl_id, url)
    payload = {
        "missing_status": {"id": bfl_id, "result": ready["result"]},
        "missing_id": {"status": "Ready", "result": ready["result"]},
        "status_not_a_string": dict(ready, status=["Ready"]),
        "empty_status": dict(ready, status="  "),
        "ready_without_sample": {"id": bfl_id, "status": "Ready", "result": {"seed": 1}},
        "ready_with_empty_sample": {"id": bfl_id, "status": "Ready", "result": {"sample": ""}},
    }.get(case)
    if payload is not None:
        return json.dumps(payload).encode()
    assert case == "over_1_mib"
    return _padded(ready, MAX_CALLBACK_BYTES + 1)


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_or_oversized_callback_is_refused_and_changes_nothing(api, sim, spy, case):
    job = api.submit("[pending] c")
    before = snapshot(api.job(job["id"]))
    url, _ = serve_png(spy, "bad-body")

    response = api.callback(job["id"], _bad_body(case, job["bfl_id"], url))

    assert_error_status(response, BAD_BODIES[case][1])
    assert snapshot(api.job(job["id"])) == before
    assert spy.hits == []


def test_oversized_chunked_callback_without_content_length_is_refused(api, sim, spy):
    job = api.submit("[pending] chunked")
    before = snapshot(api.job(job["id"]))
    url, _ = serve_png(spy, "chunked")
    body = _padded(ready_payload(job["bfl_id"], url), MAX_CALLBACK_BYTES + 1000)
    secret = signing.job_webhook_secret(SECRET_KEY, job["id"])

    # A generator body makes requests send Transfer-Encoding: chunked, without Content-Length.
    response = requests.post(signing.job_webhook_url(api.base_url, SECRET_KEY, job["id"]),
                             data=(body[i:i + 8192] for i in range(0, len(body), 8192)),
                             headers={"Content-Type": "application/json", "X-Webhook-Secret": secret},
                             timeout=10)

    assert "at most 1 MiB" in assert_error_status(response, 413)["message"]
    assert snapshot(api.job(job["id"])) == before
    assert spy.hits == []


def test_a_callback_announcing_2_mib_is_refused_before_its_body_with_the_callbacks_limit(api):
    job = api.submit("[pending] announced")
    before = snapshot(api.job(job["id"]))
    url = signing.job_webhook_url(api.base_url, SECRET_KEY, job["id"])
    head = (f"POST {urlsplit(url).path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {2 * 1024 * 1024}\r\n\r\n").encode()

    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.recv(65536).decode()

    assert answer.startswith("HTTP/1.1 413 ")
    message = json.loads(answer.split("\r\n\r\n", 1)[1])["error"]["message"]
    assert "callback bodies are at most 1 MiB" in message and "256" not in message
    assert snapshot(api.job(job["id"])) == before


def test_callback_of_exactly_1_mib_is_accepted(api, sim):
    job = api.submit("[pending] boundary")

    response = api.callback(job["id"], _padded({"id": job["bfl_id"], "status": "Pending"}, MAX_CALLBACK_BYTES))

    assert response.status_code == 200, response.text
    after = api.job(job["id"])
    assert after["status"] == "submitted"
    assert after["attempts"]["webhooks"] == 1


# -- accepted callbacks -------------------------------------------------------


def test_ready_callback_is_stored_with_source_webhook(api, sim, spy):
    job = api.submit("[pending] ready")
    url, data = serve_png(spy, "ready", width=20, height=10)

    response = api.callback(job["id"], ready_payload(job["bfl_id"], url))

    assert response.status_code == 200, response.text
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["source"] == "webhook"
    assert stored["bfl_status"] == "Ready"
    assert stored["error"] is None
    assert stored["attempts"] == {"webhooks": 1, "polls": 0, "downloads": 1}
    assert (stored["image"]["width"], stored["image"]["height"]) == (20, 10)
    assert stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert api.get(f"/v1/jobs/{job['id']}/image").content == data
    assert spy.hits == ["/ready.png"]


@pytest.mark.parametrize(("name", "proof"), [
    ("no-secret", {"secret": None}),  # accepted: WEBHOOK_REQUIRE_SECRET is 0 in the stack
    ("hmac", {"signature": True}),
])
def test_callback_without_the_secret_header_is_accepted(api, sim, spy, name, proof):
    job = api.submit(f"[pending] {name}")
    url, data = serve_png(spy, name)

    response = api.callback(job["id"], ready_payload(job["bfl_id"], url), **proof)

    assert response.status_code == 200, response.text
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["attempts"]["webhooks"] == 1


def test_secret_and_signature_together_are_accepted(api, sim, spy):
    job = api.submit("[pending] both")
    url, _ = serve_png(spy, "both")
    payload = ready_payload(job["bfl_id"], url)
    secret = signing.job_webhook_secret(SECRET_KEY, job["id"])
    signature = "sha256=" + hmac.new(secret.encode(), json.dumps(payload).encode(), hashlib.sha256).hexdigest()

    response = api.callback(job["id"], payload, headers={"X-BFL-Signature": signature})

    assert response.status_code == 200, response.text
    assert api.wait_for(job["id"])["status"] == "stored"


@pytest.mark.parametrize("variant", ["task_id", "SUCCESS", "ready", "READY", "success"])
def test_ready_spellings_and_task_id_are_accepted(api, sim, spy, variant):
    job = api.submit("[pending] spelling")
    url, data = serve_png(spy, f"spelling-{variant}")
    payload = ready_payload(job["bfl_id"], url)
    if variant == "task_id":
        payload["task_id"] = payload.pop("id")
    else:
        payload["status"] = variant

    response = api.callback(job["id"], payload)

    assert response.status_code == 200, response.text
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["bfl_status"] == "Ready"
    assert stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("word", "shown"), [("Pending", "Pending"), ("PENDING", "Pending"),
                                            ("Processing", "Processing")])
def test_a_running_word_only_updates_bfl_status(api, sim, spy, word, shown):
    job = api.submit("[pending] still pending")
    before = api.job(job["id"])

    response = api.callback(job["id"], {"id": job["bfl_id"], "status": word})

    assert response.status_code == 200, response.text
    after = api.job(job["id"])
    assert after["status"] == "submitted"
    assert after["bfl_status"] == shown  # BFL's own word, or one it added kept as sent
    assert after["attempts"] == dict(before["attempts"], webhooks=before["attempts"]["webhooks"] + 1)
    assert (after["source"], after["image"], after["error"], after["completed_at"]) == (None, None, None, None)


def test_duplicate_ready_callback_downloads_once(api, sim, spy):
    job = api.submit("[pending] dup")
    url, data = serve_png(spy, "dup")
    payload = ready_payload(job["bfl_id"], url)

    first = api.callback(job["id"], payload)
    second = api.callback(job["id"], payload)

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["downloads"] == 1
    assert stored["attempts"]["webhooks"] == 2
    assert spy.hits.count("/dup.png") == 1
    # After the job is stored, the same callback again changes nothing either.
    assert api.callback(job["id"], payload).status_code == 200
    again = api.job(job["id"])
    assert again["attempts"]["downloads"] == 1
    assert again["status"] == "stored"
    assert again["image"]["sha256"] == stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert spy.hits.count("/dup.png") == 1


def test_concurrent_duplicate_ready_callbacks_download_once(api, sim, spy):
    job = api.submit("[pending] concurrent dup")
    url, data = serve_png(spy, "concurrent")
    payload = ready_payload(job["bfl_id"], url)
    barrier = threading.Barrier(5)

    def send(_):
        barrier.wait(timeout=10)
        return api.callback(job["id"], payload)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(send, range(5)))

    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["downloads"] == 1
    assert stored["attempts"]["webhooks"] == 5
    assert spy.hits.count("/concurrent.png") == 1
    assert stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_callbacks_after_the_job_is_terminal_change_nothing(api, sim, spy):
    job = api.submit("[pending] terminal")
    url, data = serve_png(spy, "first")
    assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    other_url, _ = serve_png(spy, "second", color=(0, 0, 255))

    late = [
        api.callback(job["id"], ready_payload(job["bfl_id"], other_url)),
        api.callback(job["id"], {"id": job["bfl_id"], "status": "Error", "error": "late", "message": "late"}),
        api.callback(job["id"], {"id": job["bfl_id"], "status": "Content Moderated"}),
        api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"}),
    ]

    assert [r.status_code for r in late] == [200] * 4, [r.text for r in late]
    after = api.job(job["id"])
    assert after["status"] == "stored"
    assert after["bfl_status"] == "Ready"
    assert after["error"] is None
    assert after["completed_at"] == stored["completed_at"]
    assert after["image"]["sha256"] == stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert after["attempts"]["downloads"] == 1
    assert after["attempts"]["polls"] == stored["attempts"]["polls"] == 0
    assert "/second.png" not in spy.hits
    assert api.get(f"/v1/jobs/{job['id']}/image").content == data


# -- the static URL /webhooks/bfl ---------------------------------------------


def test_static_url_refuses_callbacks_without_the_static_secret(api, sim, spy):
    task = sim_task(sim, "[pending] tracked elsewhere")
    tracked = api.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    job = tracked.json()
    before = snapshot(job)
    url, _ = serve_png(spy, "static-refused")
    payload = ready_payload(task["id"], url)

    answers = [
        static_post(api, payload, secret=None),
        static_post(api, payload, secret="wrong-static-secret"),
        static_post(api, payload, secret="wrong-static-secret", signature=True),
        static_post(api, payload, secret=None, headers={"X-BFL-Signature": "sha256=nothex"}),
        # A per-job secret is worth nothing on the static URL.
        static_post(api, payload, secret=signing.job_webhook_secret(SECRET_KEY, job["id"])),
    ]

    for answer in answers:
        assert_error_status(answer, 401)
    assert snapshot(api.job(job["id"])) == before
    assert spy.hits == []


def test_static_url_refused_orphan_is_not_kept(api, sim, spy):
    task = sim_task(sim, "[pending] unknown yet")
    url, _ = serve_png(spy, "orphan-refused")

    answer = static_post(api, ready_payload(task["id"], url), secret="wrong-static-secret")

    assert_error_status(answer, 401)
    tracked = api.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    job = api.job(tracked.json()["id"])
    assert job["status"] == "submitted"
    assert job["attempts"]["webhooks"] == 0
    assert spy.hits == []


def test_static_url_keeps_a_verified_orphan_and_applies_it_when_tracked(api, sim):
    task = sim_task(sim, "x")
    result = wait_sim_ready(sim, task["id"])
    payload = {"id": task["id"], "status": result["status"], "result": result["result"]}

    answer = static_post(api, payload)

    assert answer.status_code == 202, answer.text
    tracked = api.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    job_id = tracked.json()["id"]
    stored = api.wait_for(job_id)
    assert stored["status"] == "stored", stored
    # The kept report made the job ask BFL: what was stored is what the poll stated.
    assert stored["source"] == "poll"
    assert stored["attempts"]["webhooks"] == 1
    assert stored["attempts"]["downloads"] == 1
    assert stored["image"]["sha256"] == hashlib.sha256(sim.image_bytes(task["id"])).hexdigest()

    again = api.track(task["id"])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == job_id
    assert api.job(job_id)["attempts"]["webhooks"] == 1


def test_static_callback_for_a_tracked_job_is_applied_as_bfl_states_it(api, sim, spy):
    task = sim_task(sim, "[pending] tracked")
    tracked = api.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    sim.complete(task["id"])
    url, _ = serve_png(spy, "static-ok")

    # The static secret proves nothing of the task: the URL it names is never fetched, BFL's own result is.
    answer = static_post(api, ready_payload(task["id"], url), signature=True)

    assert answer.status_code == 200 and answer.json()["outcome"] == "confirm_queued", answer.text
    stored = api.wait_for(tracked.json()["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1
    assert stored["image"]["sha256"] == hashlib.sha256(sim.image_bytes(task["id"])).hexdigest()
    assert spy.hits == []


# -- WEBHOOK_REQUIRE_SECRET=1 -------------------------------------------------


@pytest.fixture(scope="module")
def strict_api(redis_server, simulator, _spies, stack):
    """A second web app, in this process, on the same Redis, storage and worker, requiring secrets."""
    port = free_port()
    env = service_env(redis_server, simulator, _spies[0].port, port, WEBHOOK_REQUIRE_SECRET="1")
    env["STORAGE_URL"] = stack.env["STORAGE_URL"]
    config = Config.from_env(env)
    assert config.webhook_require_secret is True
    server = make_server("127.0.0.1", port, create_app(config), threaded=True)
    thread = serve_in_thread(server)
    yield API(f"http://127.0.0.1:{port}")
    server.shutdown()
    thread.join(timeout=5)


def test_required_secret_refuses_a_per_job_callback_without_one(strict_api, sim, spy):
    job = strict_api.submit("[pending] strict")
    before = snapshot(strict_api.job(job["id"]))
    url, data = serve_png(spy, "strict")
    payload = ready_payload(job["bfl_id"], url)

    refused = strict_api.callback(job["id"], payload, secret=None)

    assert_error_status(refused, 401)
    assert snapshot(strict_api.job(job["id"])) == before
    assert spy.hits == []

    accepted = strict_api.callback(job["id"], payload)
    assert accepted.status_code == 200, accepted.text
    stored = strict_api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1
    assert stored["image"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_required_secret_accepts_the_signature_alone(strict_api, sim):
    job = strict_api.submit("[pending] strict hmac")

    response = strict_api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"}, signature=True)

    assert response.status_code == 200, response.text
    assert strict_api.job(job["id"])["attempts"]["webhooks"] == 1
