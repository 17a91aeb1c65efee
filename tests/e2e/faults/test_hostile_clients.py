"""Slow, stalled and hostile clients against the Procfile's web process alone (no proxy in front), over
real sockets on 127.0.0.1: they hold no thread and no work permit, and the server closes them by its
deadlines (receiver/buffering_worker.py). Callbacks are checked for their token, and API requests for their
credentials, before their body is read.

Figures (latencies under 300 slowloris + 50 slow bodies) are bench/hostile.py's; here, at a smaller
scale, that callbacks and reads are answered at all while the attack holds its connections open.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import redis
import requests

from conftest import API_TOKEN, ready_payload, service_env
from devtools.hostile_clients import BODY_LENGTH, FORGED_KEY, Attack, slow_body_head
from devtools.processes import free_port, wait_until
from devtools.stack import Stack
from fluxhook.bfl.reports import MAX_CALLBACK_BYTES
from fluxhook.lifecycle.steps import timeline
from fluxhook.store.timeline import TimelineStore
from helpers import assert_error, read_answer, secret_of, serve_png, status_of, web_worker_pids, webhook_url
from key_helpers import make_key
from receiver.buffering_worker import HEAD_SECONDS, SWEEP_SECONDS
from receiver.request_assembly import RATE_WINDOW_SECONDS

# The server's deadline for a connection that trickles, with room for a loaded machine.
CLOSED_WITHIN = max(HEAD_SECONDS, RATE_WINDOW_SECONDS) + 2 * SWEEP_SECONDS + 10


def _port(stack) -> int:
    return int(stack.env["PORT"])


def _open(stack, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", _port(stack)), timeout=10)
    sock.sendall(data)
    return sock




def _served_while(api, jobs: list[dict], rounds: int = 5) -> None:
    """Callbacks are acknowledged and jobs read, each within a few seconds at most."""
    for n in range(rounds):
        job = jobs[n % len(jobs)]
        callback = api.callback(job["id"], {"id": job["bfl_id"], "status": "Pending"})
        assert callback.status_code == 200, callback.text
        assert api.get(f"/v1/jobs/{job['id']}", timeout=5).status_code == 200
        assert requests.get(api.base_url + "/healthz", timeout=5).status_code == 200


def _timeline(stack, job_id: str) -> list[dict]:
    return timeline.recent(TimelineStore(redis.Redis.from_url(stack.env["REDIS_URL"])), job_id)


@pytest.fixture()
def jobs(api, sim) -> list[dict]:
    return [api.submit(f"[pending] hostile {n}") for n in range(3)]


def test_slowloris_and_slow_bodies_hold_nothing_and_are_closed_by_the_deadline(api, stack, jobs):
    workers = web_worker_pids(stack)
    with Attack(_port(stack), slowloris=60, slow_bodies=10, interval=0.5, replace=False, limit=60) as attack:
        _served_while(api, jobs)
        # Served while every hostile connection was still open and trickling.
        assert attack.closed_by_server() == [] and len(attack.open) == 70
        wait_until(lambda: len(attack.closed_by_server()) == 70, timeout=CLOSED_WITHIN + 10, interval=0.2,
                   message="the server to close every slow connection")
        closed = attack.closed_by_server()
    assert max(hostile.kept for hostile in closed) <= CLOSED_WITHIN
    # Each was told why: a JSON 408, not a silent drop.
    assert {status_of(hostile.answer) for hostile in closed} == {408}
    assert json.loads(closed[0].answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert web_worker_pids(stack) == workers


@pytest.mark.parametrize("path, authorized", [("/signin", False), ("/v1/jobs", True), ("/webhooks/bfl", False)])
def test_bodies_that_stall_after_one_byte_freeze_nothing(api, stack, jobs, path, authorized):
    head = slow_body_head(path, headers=f"Authorization: Bearer {API_TOKEN}\r\n" if authorized else "")
    stalled = [_open(stack, head + b"x") for _ in range(16)]
    try:
        _served_while(api, jobs)
        started = time.monotonic()
        answers = [read_answer(sock, timeout=CLOSED_WITHIN) for sock in stalled]
        assert time.monotonic() - started <= CLOSED_WITHIN
        assert {status_of(answer) for answer in answers} == {408}
    finally:
        for sock in stalled:
            sock.close()


def _refused_at_once(api, stack, jobs, heads: list[bytes], status: int = 401) -> list[dict]:
    """Heads announcing bodies that never come: each is answered ``status`` and closed at once, none holds anything
    (the others are served meanwhile). Their answers' JSON bodies."""
    stalled = [_open(stack, head + b"x") for head in heads]
    try:
        answers = [read_answer(sock, timeout=5) for sock in stalled]
        _served_while(api, jobs)
    finally:
        for sock in stalled:
            sock.close()
    for answer in answers:
        head = answer.partition(b"\r\n\r\n")[0]
        assert status_of(answer) == status, head
        assert b"\r\nConnection: close\r\n" in head, head
    return [json.loads(answer.partition(b"\r\n\r\n")[2]) for answer in answers]


def test_a_callback_on_a_url_fluxhook_did_not_issue_is_refused_before_its_body(api, stack, jobs):
    heads = [slow_body_head(f"/webhooks/bfl/not-a-token-{n}") for n in range(16)]
    assert {body["error"]["code"] for body in _refused_at_once(api, stack, jobs, heads)} == {"unauthorized"}


def test_unread_bodies_of_refused_submissions_do_not_stall_the_web_process(api, stack, jobs):
    """Whole bodies nobody reads, from clients that never close: gunicorn's graceful close waited on each."""
    body = b"x" * BODY_LENGTH
    held = [_open(stack, slow_body_head("/v1/jobs") + body) for _ in range(16)]
    try:
        for sock in held:
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 401 "), "refused: no credentials"
        _served_while(api, jobs, rounds=3)
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_expects_100_continue_gets_it_once_and_is_answered(stack):
    head = slow_body_head("/v1/jobs", 2, headers=f"Authorization: Bearer {API_TOKEN}\r\nExpect: 100-continue\r\n")
    with _open(stack, head) as sock:
        sock.settimeout(5)
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        answer = read_answer(sock, timeout=3)
    assert status_of(answer) == 400 and b"100 Continue" not in answer  # {} names no model


@pytest.mark.parametrize("path, credentials", [
    ("/v1/jobs", ""),
    ("/v1/jobs", "Authorization: Bearer not-a-token\r\n"),
    ("/v1/flux-2-pro", "x-key: \r\n"),
    ("/v1/keys", "Authorization: Basic YWRtaW46YWRtaW4=\r\n"),
])
def test_an_api_request_with_no_token_that_could_be_valid_is_refused_before_its_body(api, stack, jobs, path,
                                                                                   credentials):
    bodies = _refused_at_once(api, stack, jobs, [slow_body_head(path, headers=credentials)] * 16)
    if path == "/v1/flux-2-pro":
        assert all(set(body) == {"detail"} for body in bodies)  # BFL's shape on BFL's routes
    else:
        assert {body["error"]["code"] for body in bodies} == {"unauthorized"}


@pytest.mark.parametrize("path, credentials", [
    ("/v1/jobs", f"Authorization: Bearer {FORGED_KEY}\r\n"),
    ("/v1/flux-2-pro", f"x-key: {FORGED_KEY}\r\n"),
])
def test_a_forged_app_key_announcing_a_large_body_is_refused_before_its_body(api, stack, jobs, path, credentials):
    heads = [slow_body_head(path, 200 * 1024 * 1024, headers=credentials)] * 10
    if path == "/v1/flux-2-pro":  # BFL answers a key it refuses 403, in its shape
        assert all(set(body) == {"detail"} for body in _refused_at_once(api, stack, jobs, heads, status=403))
    else:
        assert {body["error"]["code"] for body in _refused_at_once(api, stack, jobs, heads)} == {"unauthorized"}


def test_a_real_app_keys_body_is_received_and_a_revoked_ones_is_not(api, stack):
    created, _ = make_key(api)
    head = slow_body_head("/v1/jobs", 2, headers=f"Authorization: Bearer {created['key']}\r\n")
    with _open(stack, head) as sock:
        sock.settimeout(1)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # waiting for the body
        sock.sendall(b"{}")
        answer = read_answer(sock, timeout=5)
    assert status_of(answer) == 400  # judged on its body: {} names no model

    assert api.delete(f"/v1/keys/{created['id']}").status_code == 204
    wait_until(lambda: requests.get(api.base_url + "/v1/jobs", timeout=5,
                                    headers={"Authorization": f"Bearer {created['key']}"}).status_code == 401,
               timeout=10, message="the revocation to reach the web processes")
    with _open(stack, head + b"{") as sock:
        assert status_of(read_answer(sock, timeout=5)) == 401


def test_pipelined_requests_on_one_connection_are_each_answered(stack):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with _open(stack, request * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") as sock:
        answer = read_answer(sock, timeout=5)
    assert answer.count(b"HTTP/1.1 200 ") == 3


def test_a_body_larger_than_any_request_fluxhook_takes_is_refused_before_it_is_sent(stack):
    with _open(stack, slow_body_head("/v1/jobs", 10**12)) as sock:
        answer = read_answer(sock, timeout=5)
    assert status_of(answer) == 413
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "payload_too_large"


def test_a_callback_echoing_a_100000_character_prompt_is_accepted(api, sim, spy):
    job = api.submit("[pending] long prompt")
    payload = dict(ready_payload(job["bfl_id"], serve_png(spy, "long-prompt")))
    payload["result"] = dict(payload["result"], prompt="a fox " * 20_000)  # BFL echoes the prompt

    response = api.callback(job["id"], payload)

    assert response.status_code == 200, response.text
    assert api.wait_for(job["id"])["status"] == "stored"


def test_a_callback_over_1_mib_is_refused_and_on_its_jobs_timeline(api, stack, sim):
    job = api.submit("[pending] too large")
    body = json.dumps({"id": job["bfl_id"], "status": "Pending", "pad": "x" * MAX_CALLBACK_BYTES}).encode()

    response = requests.post(webhook_url(api.base_url, job["id"]), data=body, timeout=10,
                             headers={"Content-Type": "application/json", "X-Webhook-Secret": secret_of(job["id"])})

    assert_error(response, 413, "payload_too_large")
    refused = [e for e in _timeline(stack, job["id"]) if e.get("kind") == "callback"]
    assert [(e["outcome"], e["reason"]) for e in refused] == [("refused", "payload_too_large")]
    assert secret_of(job["id"]) not in json.dumps(refused)


def test_a_callback_with_a_bad_body_on_a_jobs_own_url_is_on_its_timeline(api, stack, sim):
    job = api.submit("[pending] bad body")

    response = api.callback(job["id"], b'{"id": "no status"}')

    assert_error(response, 400)
    refused = [e for e in _timeline(stack, job["id"]) if e.get("kind") == "callback"]
    assert [(e["outcome"], e["reason"]) for e in refused] == [("refused", "invalid_request")]


def test_a_stopping_web_process_does_not_wait_on_slow_clients(redis_server, simulator, _spies, tmp_path):
    # One worker, so the one that answers /healthz is the one stopped: gunicorn loses a SIGTERM that reaches a
    # worker still starting (before it sets its handlers), and that worker stops only at the graceful timeout.
    env = dict(os.environ, **service_env(redis_server, simulator, _spies[0].port, free_port(),
                                         STORAGE_URL=f"file://{tmp_path / 'images'}", WEB_CONCURRENCY="1"))
    own = Stack(env=env, var_dir=Path(tmp_path))
    own.start("web")
    try:
        idle = _open(own, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
        slow = [_open(own, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(8)]
        started = time.monotonic()
        os.kill(own.processes["web"].pid, signal.SIGTERM)
        own.processes["web"].wait(timeout=HEAD_SECONDS + 10)
        # Not the head deadline, nor gunicorn's graceful timeout: 2 s for a head, 2 s to linger.
        assert time.monotonic() - started < HEAD_SECONDS
        # Each told 408 and closed (or closed unaccepted with the listener, if it was still in its backlog).
        answers = [read_answer(sock, timeout=1) for sock in slow]
        assert all(answer == b"" or status_of(answer) == 408 for answer in answers), answers
        assert own.processes["web"].returncode == 0
    finally:
        own.stop()
