"""Forged, replayed and cross-job callbacks, malformed proofs and bodies, against the Procfile's web
and worker processes over real HTTP on 127.0.0.1.

Each test mounts one attack on a webhook URL and proves it is refused with the right status and
the JSON error shape, that the job record is unchanged, and that no download was queued or sent.
Jobs are submitted with ``[pending]`` prompts, so the simulator keeps them Pending and the tests
send the callbacks themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import quote

import pytest
import redis
import requests

from conftest import SECRET_KEY, STATIC_SECRET, ready_payload
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.jobs import JobStore
from helpers import (
    OTHER_KEY,
    assert_error,
    hmac_hex,
    job_ids,
    nested,
    secret_of,
    send_raw,
    serve_png,
    snapshot,
    web_worker_pids,
    webhook_url,
)

MAX_CALLBACK_BYTES = 1024 * 1024


def _cross_job_request(case: str, base_url: str, a: dict, b: dict, payload_a: dict, payload_b: dict):
    """Job A's genuine callback material, aimed at job B's URL in one way or another."""
    body_a, body_b = json.dumps(payload_a).encode(), json.dumps(payload_b).encode()
    url_b = webhook_url(base_url, b["id"])
    json_type = {"Content-Type": "application/json"}
    if case == "a_body_and_secret_replayed_to_b_url":
        return requests.post(url_b, data=body_a, headers={**json_type, "X-Webhook-Secret": secret_of(a["id"])},
                             timeout=10)
    if case == "a_body_and_signature_replayed_to_b_url":
        signature = "sha256=" + hmac_hex(secret_of(a["id"]), body_a)
        return requests.post(url_b, data=body_a, headers={**json_type, "X-BFL-Signature": signature}, timeout=10)
    if case == "a_body_without_proof_to_b_url":
        return requests.post(url_b, data=body_a, headers=json_type, timeout=10)
    if case == "a_secret_on_b_payload":
        return requests.post(url_b, data=body_b, headers={**json_type, "X-Webhook-Secret": secret_of(a["id"])},
                             timeout=10)
    if case == "a_secret_signing_b_payload":
        signature = "sha256=" + hmac_hex(secret_of(a["id"]), body_b)
        return requests.post(url_b, data=body_b, headers={**json_type, "X-BFL-Signature": signature}, timeout=10)
    if case == "b_secret_on_a_body_at_b_url":
        return requests.post(url_b, data=body_a, headers={**json_type, "X-Webhook-Secret": secret_of(b["id"])},
                             timeout=10)
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "a_body_and_secret_replayed_to_b_url",
    "a_body_and_signature_replayed_to_b_url",
    "a_body_without_proof_to_b_url",
    "a_secret_on_b_payload",
    "a_secret_signing_b_payload",
    "b_secret_on_a_body_at_b_url",
])
def test_callback_of_one_job_replayed_to_another_jobs_url_is_refused_and_changes_nothing(api, sim, spy, case):
    a, b = api.submit("[pending] job a"), api.submit("[pending] job b")
    payload_a = ready_payload(a["bfl_id"], serve_png(spy, f"a-{case}"))
    # Job A's callback really is valid: it is applied once, and A is stored.
    assert api.callback(a["id"], payload_a).status_code == 200
    stored_a = api.wait_for(a["id"])
    assert stored_a["status"] == "stored", stored_a
    before_a, before_b = snapshot(api.job(a["id"])), snapshot(api.job(b["id"]))
    hits_before = list(spy.hits)
    payload_b = ready_payload(b["bfl_id"], serve_png(spy, f"b-{case}"))

    response = _cross_job_request(case, api.base_url, a, b, payload_a, payload_b)

    assert_error(response, 401, "unauthorized")
    assert snapshot(api.job(b["id"])) == before_b
    assert snapshot(api.job(a["id"])) == before_a
    assert before_b["status"] == "submitted" and before_b["attempts"]["webhooks"] == 0
    assert spy.hits == hits_before == [f"/a-{case}.png"]


@pytest.mark.parametrize("webhook_mode", ["secret", "hmac", "both"])
def test_replayed_genuine_callback_after_it_was_applied_changes_nothing_and_downloads_once(api, sim, webhook_mode):
    sim.settings(webhook_mode=webhook_mode)
    job = api.submit(f"[pending] replayed by BFL ({webhook_mode})")
    sim.complete(job["bfl_id"])
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["source"] == "webhook"
    deliveries = sim.stats()["delivery_requests"]
    assert deliveries == 1

    # BFL's own callback, byte for byte and with its own headers, sent again twice.
    replays = [sim.control("POST", f"/tasks/{job['bfl_id']}/callback")["status_code"] for _ in range(2)]

    assert replays == [200, 200]
    after = api.job(job["id"])
    expected = dict(stored, attempts=dict(stored["attempts"], webhooks=stored["attempts"]["webhooks"] + 2))
    assert snapshot(after) == snapshot(expected)
    assert after["attempts"]["downloads"] == 1
    assert sim.stats()["delivery_requests"] == deliveries
    assert [a["replay"] for a in sim.task(job["bfl_id"])["callback_attempts"]] == [False, True, True]


def test_replayed_callback_for_a_deleted_job_recreates_nothing(api, sim, spy):
    job = api.submit("[pending] deleted, then replayed")
    payload = ready_payload(job["bfl_id"], serve_png(spy, "replay-deleted"))
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    # Erased once BFL ends its task (BFL's own callback says so), not before: BFL still ran it.
    sim.complete(job["bfl_id"])
    wait_until(lambda: api.get(f"/v1/jobs/{job['id']}").status_code == 404, timeout=30, message="the job erased")

    response = api.callback(job["id"], payload)

    assert_error(response, 410, "gone")
    assert_error(api.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert job["id"] not in job_ids(api)
    assert spy.hits == []


@pytest.mark.parametrize("victim_kind, sample", [
    ("submitted", "unlisted_host"),
    ("submitted", "allowlisted_host"),
    ("tracked_later", "allowlisted_host"),
])
def test_secret_of_a_queued_job_cannot_inject_a_callback_into_another_job(
        api, sim, spy, unlisted_spy, stack, victim_kind, sample):
    # A job as POST /v1/jobs leaves it while BFL's slots are all taken: queued, no task id yet. Made in
    # Redis directly so that no BFL slot is held or paused for the tests that follow.
    store = JobStore(redis.Redis.from_url(stack.env["REDIS_URL"]))
    queued, _ = store.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro",
                                 created_at=time.time(), updated_at=time.time()))
    if victim_kind == "submitted":
        victim = api.submit("[pending] victim")
        task_id = victim["bfl_id"]
    else:
        task_id = sim.http.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": "[pending] victim elsewhere"},
                                headers={"x-key": SIMULATOR_KEY}, timeout=10).json()["id"]
    host = unlisted_spy if sample == "unlisted_host" else spy
    forged = ready_payload(task_id, serve_png(host, "planted"))

    try:
        # Proven with the queued job's own secret, on its own URL, but naming the victim's task.
        response = api.callback(queued.id, forged)
        if victim_kind == "tracked_later":
            tracked = api.track(task_id)
            assert tracked.status_code == 201, tracked.text
            victim = tracked.json()
        before = snapshot(victim)
        after = api.job(victim["id"])
        if after["status"] == "ready":
            after = api.wait_for(victim["id"])  # let the planted download run its course

        assert (after["status"], after["error"], after["image"]) == ("submitted", None, None), after
        assert snapshot(after) == before
        assert unlisted_spy.hits == [] and spy.hits == []
        if response.status_code == 401:
            assert_error(response, 401, "unauthorized")
        else:  # kept for the queued job itself, to check against its own task id once it has one
            assert response.status_code == 202, (response.status_code, response.text)
    finally:
        store.delete(queued.id)


def _foreign_key_request(case: str, base_url: str, job: dict, body: bytes):
    json_type = {"Content-Type": "application/json"}
    if case == "token_and_secret_of_another_key":
        url, headers = webhook_url(base_url, job["id"], OTHER_KEY), {"X-Webhook-Secret": secret_of(job["id"], OTHER_KEY)}
    elif case == "token_of_another_key_with_the_right_secret":
        url, headers = webhook_url(base_url, job["id"], OTHER_KEY), {"X-Webhook-Secret": secret_of(job["id"])}
    elif case == "token_of_another_key_unproven":
        url, headers = webhook_url(base_url, job["id"], OTHER_KEY), {}
    elif case == "secret_derived_with_another_key":
        url, headers = webhook_url(base_url, job["id"]), {"X-Webhook-Secret": secret_of(job["id"], OTHER_KEY)}
    elif case == "signature_with_a_secret_of_another_key":
        url = webhook_url(base_url, job["id"])
        headers = {"X-BFL-Signature": "sha256=" + hmac_hex(secret_of(job["id"], OTHER_KEY), body)}
    elif case == "secret_key_itself_as_the_secret":
        url, headers = webhook_url(base_url, job["id"]), {"X-Webhook-Secret": SECRET_KEY}
    elif case == "static_secret_on_a_per_job_url":
        url, headers = webhook_url(base_url, job["id"]), {"X-Webhook-Secret": STATIC_SECRET}
    elif case == "image_token_as_webhook_token":
        url, headers = f"{base_url}/webhooks/bfl/{signing.file_token(SECRET_KEY, job['id'], 'image')}", {}
    else:
        raise AssertionError(case)
    return requests.post(url, data=body, headers={**json_type, **headers}, timeout=10)


@pytest.mark.parametrize("case", [
    "token_and_secret_of_another_key",
    "token_of_another_key_with_the_right_secret",
    "token_of_another_key_unproven",
    "secret_derived_with_another_key",
    "signature_with_a_secret_of_another_key",
    "secret_key_itself_as_the_secret",
    "static_secret_on_a_per_job_url",
    "image_token_as_webhook_token",
])
def test_tokens_and_secrets_minted_with_another_secret_key_are_refused(api, sim, spy, case):
    job = api.submit("[pending] foreign key")
    before = snapshot(api.job(job["id"]))
    body = json.dumps(ready_payload(job["bfl_id"], serve_png(spy, "foreign"))).encode()

    response = _foreign_key_request(case, api.base_url, job, body)

    assert_error(response, 401, "unauthorized")
    assert snapshot(api.job(job["id"])) == before
    assert spy.hits == []


# Header lines (name, value) built from the job's real secret and the exact body sent.
_MALFORMED_PROOFS = {
    "signature_without_sha256_prefix": lambda s, b: [("X-BFL-Signature", hmac_hex(s, b))],
    "signature_prefix_in_upper_case": lambda s, b: [("X-BFL-Signature", "SHA256=" + hmac_hex(s, b))],
    "signature_one_hex_digit_short": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex(s, b)[:-1])],
    "signature_one_hex_digit_long": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex(s, b) + "0")],
    "signature_not_hex": lambda s, b: [("X-BFL-Signature", "sha256=" + "g" + hmac_hex(s, b)[1:])],
    "signature_with_inner_space": lambda s, b: [("X-BFL-Signature", "sha256= " + hmac_hex(s, b))],
    "signature_followed_by_another": lambda s, b: [("X-BFL-Signature", f"sha256={hmac_hex(s, b)},sha256=00")],
    "signature_prefix_only": lambda s, b: [("X-BFL-Signature", "sha256=")],
    "signature_sha1_of_the_secret": lambda s, b: [("X-BFL-Signature",
                                                   "sha1=" + hmac.new(s.encode(), b, hashlib.sha1).hexdigest())],
    "signature_unkeyed_sha256_of_the_body": lambda s, b: [("X-BFL-Signature", "sha256=" + hashlib.sha256(b).hexdigest())],
    "signature_keyed_with_a_guessed_secret": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex("secret", b))],
    "signature_of_the_body_plus_a_space": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex(s, b + b" "))],
    "signature_empty": lambda s, b: [("X-BFL-Signature", "")],
    "secret_empty": lambda s, b: [("X-Webhook-Secret", "")],
    "secret_truncated": lambda s, b: [("X-Webhook-Secret", s[:-1])],
    "secret_with_a_suffix": lambda s, b: [("X-Webhook-Secret", s + "x")],
    "secret_in_upper_case": lambda s, b: [("X-Webhook-Secret", s.upper())],
    "secret_with_a_unicode_lookalike": lambda s, b: [("X-Webhook-Secret", s[:-1].encode() + "а".encode())],
    "secret_unicode_bytes_only": lambda s, b: [("X-Webhook-Secret", "sécrèt-€".encode())],
    "secret_latin1_bytes": lambda s, b: [("X-Webhook-Secret", b"\xff\xfe" + s.encode())],
    "right_secret_wrong_signature": lambda s, b: [("X-Webhook-Secret", s), ("X-BFL-Signature", "sha256=" + "0" * 64)],
    "wrong_secret_right_signature": lambda s, b: [("X-Webhook-Secret", "nope"),
                                                  ("X-BFL-Signature", "sha256=" + hmac_hex(s, b))],
    "right_secret_empty_signature": lambda s, b: [("X-Webhook-Secret", s), ("X-BFL-Signature", "")],
    "empty_secret_right_signature": lambda s, b: [("X-Webhook-Secret", ""), ("X-BFL-Signature", "sha256=" + hmac_hex(s, b))],
    # Repeated header lines are joined with "," by the server: never the one right value.
    "secret_repeated_right_then_wrong": lambda s, b: [("X-Webhook-Secret", s), ("X-Webhook-Secret", "nope")],
    "secret_repeated_wrong_then_right": lambda s, b: [("X-Webhook-Secret", "nope"), ("X-Webhook-Secret", s)],
    "secret_repeated_right_twice": lambda s, b: [("X-Webhook-Secret", s), ("X-Webhook-Secret", s)],
    "signature_repeated_right_then_wrong": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex(s, b)),
                                                         ("X-BFL-Signature", "sha256=" + "0" * 64)],
    "signature_repeated_right_twice": lambda s, b: [("X-BFL-Signature", "sha256=" + hmac_hex(s, b))] * 2,
}


@pytest.mark.parametrize("case", list(_MALFORMED_PROOFS))
def test_malformed_or_wrong_secret_headers_are_refused_and_change_nothing(api, sim, spy, case):
    job = api.submit("[pending] malformed proof")
    before = snapshot(api.job(job["id"]))
    body = json.dumps(ready_payload(job["bfl_id"], serve_png(spy, "malformed"))).encode()
    headers = [("Content-Type", "application/json"), *_MALFORMED_PROOFS[case](secret_of(job["id"]), body)]

    response = send_raw("POST", webhook_url(api.base_url, job["id"]), headers, body)

    assert_error(response, 401, "unauthorized")
    assert snapshot(api.job(job["id"])) == before
    assert before["attempts"]["webhooks"] == 0
    assert spy.hits == []


@pytest.mark.parametrize("header, spelling", [
    pytest.param("X-BFL-Signature", lambda hex_: "sha256=" + hex_, id="lower-case-hex"),
    pytest.param("X-BFL-Signature", lambda hex_: "sha256=" + hex_.upper(), id="upper-case-hex"),
    pytest.param("x-bfl-signature", lambda hex_: "sha256=" + hex_[:32].upper() + hex_[32:],
                 id="mixed-case-hex-lower-case-header-name"),
])
def test_signature_hex_case_does_not_matter_but_its_value_does(api, sim, spy, spelling, header):
    """verification.py accepts ``sha256=`` followed by the HMAC in either case (hex is case-free)."""
    job = api.submit("[pending] hex case")
    body = json.dumps(ready_payload(job["bfl_id"], serve_png(spy, "hex-case"))).encode()
    proof = spelling(hmac_hex(secret_of(job["id"]), body))

    response = send_raw("POST", webhook_url(api.base_url, job["id"]),
                        [("Content-Type", "application/json"), (header, proof)], body)

    assert response.status_code == 200, response.text
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1 and stored["attempts"]["downloads"] == 1
    assert spy.hits == ["/hex-case.png"]


@pytest.mark.parametrize("url_kind", ["per_job", "static"])
@pytest.mark.parametrize("body, status", [
    pytest.param(b"{" + b" " * (1024 * 1024) + b"}", 413, id="one-mib-of-whitespace"),
    pytest.param(nested(600_000), 413, id="600000-nested-lists-over-1-mib"),
    pytest.param(nested(30_000), 400, id="30000-nested-lists-under-1-mib"),
    pytest.param(b'{"id": "x", "status": "Ready", "result": ' + nested(30_000) + b"}", 400,
                 id="nested-lists-inside-a-callback"),
    pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, id="10000-nested-objects"),
])
def test_oversized_and_deeply_nested_callbacks_are_refused_and_the_web_process_stays_up(
        api, sim, spy, stack, url_kind, body, status):
    job = api.submit("[pending] nested")
    before = snapshot(api.job(job["id"]))
    workers = web_worker_pids(stack)
    assert len(body) > MAX_CALLBACK_BYTES if status == 413 else len(body) <= MAX_CALLBACK_BYTES
    # Properly proven, so that only the body itself can be the reason for the refusal.
    secret = secret_of(job["id"]) if url_kind == "per_job" else STATIC_SECRET
    url = webhook_url(api.base_url, job["id"]) if url_kind == "per_job" else api.base_url + "/webhooks/bfl"

    response = requests.post(url, data=body, headers={"Content-Type": "application/json",
                                                      "X-Webhook-Secret": secret}, timeout=30)

    assert_error(response, status, "payload_too_large" if status == 413 else "invalid_request")
    assert snapshot(api.job(job["id"])) == before
    assert requests.get(api.base_url + "/healthz", timeout=5).status_code == 200
    assert stack.processes["web"].poll() is None
    assert web_worker_pids(stack) == workers
    # The same process still does its work.
    assert api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"}).status_code == 200
    assert spy.hits == []


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/octet-stream", None,
])
def test_callback_content_type_is_ignored_the_raw_body_is_what_is_verified_and_parsed(api, sim, spy, content_type):
    """receiver/webhooks.py reads the raw body whatever its Content-Type (BFL's may be missing or odd)."""
    job = api.submit("[pending] odd content type")
    body = json.dumps(ready_payload(job["bfl_id"], serve_png(spy, "content-type"))).encode()
    headers = [("X-BFL-Signature", "sha256=" + hmac_hex(secret_of(job["id"]), body))]
    if content_type:
        headers.append(("Content-Type", content_type))
    url = webhook_url(api.base_url, job["id"])

    forged = send_raw("POST", url, [*headers[1:], ("X-BFL-Signature", "sha256=" + hmac_hex("guess", body))], body)
    assert_error(forged, 401, "unauthorized")
    assert api.job(job["id"])["attempts"]["webhooks"] == 0

    response = send_raw("POST", url, headers, body)

    assert response.status_code == 200, response.text
    stored = api.wait_for(job["id"])
    assert stored["status"] == "stored", stored
    assert stored["attempts"]["webhooks"] == 1 and stored["attempts"]["downloads"] == 1
    assert spy.hits == ["/content-type.png"]


@pytest.mark.parametrize("content_type, make_body", [
    pytest.param("application/x-www-form-urlencoded",
                 lambda bfl_id, url: f"id={bfl_id}&status=Ready&result.sample={quote(url, safe='')}".encode(),
                 id="form-fields"),
    pytest.param("multipart/form-data; boundary=xyz",
                 lambda bfl_id, url: (f'--xyz\r\nContent-Disposition: form-data; name="id"\r\n\r\n{bfl_id}\r\n'
                                      f'--xyz\r\nContent-Disposition: form-data; name="status"\r\n\r\nReady\r\n--xyz--\r\n'
                                      ).encode(), id="multipart"),
    pytest.param("text/plain", lambda bfl_id, url: f"Ready {bfl_id} {url}".encode(), id="plain-words"),
])
def test_callback_body_that_is_not_a_json_object_is_a_400_and_changes_nothing(api, sim, spy, content_type, make_body):
    job = api.submit("[pending] not json")
    before = snapshot(api.job(job["id"]))
    body = make_body(job["bfl_id"], serve_png(spy, "not-json"))

    response = requests.post(webhook_url(api.base_url, job["id"]), data=body, timeout=10, headers={
        "Content-Type": content_type, "X-Webhook-Secret": secret_of(job["id"])})

    assert_error(response, 400, "invalid_request")
    assert snapshot(api.job(job["id"])) == before
    assert spy.hits == []
