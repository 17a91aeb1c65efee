"""A request its key's state refuses is answered from its head, over real sockets against the Procfile's web: the head
announces a large body that is never sent, and the refusal arrives anyway (the body unread, the connection closed),
while another key's requests are answered as usual."""

from __future__ import annotations

import json
import socket
import time

import pytest
import redis

from fluxhook.credits import accounting
from fluxhook.store.keys import KEYS
from helpers import read_answer, status_of
from key_helpers import make_key
from receiver.buffering_worker import HOLD_SECONDS
from receiver.head_refusals import JUDGED_FROM_BYTES

# Far more than any client sends before its answer: the answer must come without it.
ANNOUNCED = 50 * 2**20


def _head(path: str, secret: str, length: int = ANNOUNCED) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: fluxhook\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def _answered_without_body(stack, path: str, secret: str, length: int = ANNOUNCED) -> tuple[int, bytes, dict]:
    """Send only the head; the whole answer (the server closes after it), its status, head and JSON body. A refusal
    for now (429, 503) comes HOLD_SECONDS after the head (the loop holds it, no thread); any other at once."""
    with socket.create_connection(("127.0.0.1", int(stack.env["PORT"])), timeout=10) as sock:
        sent = time.monotonic()
        sock.sendall(_head(path, secret, length))
        answer = read_answer(sock, timeout=5)
        took = time.monotonic() - sent
    assert (took >= HOLD_SECONDS * 0.9) == (status_of(answer) in (429, 503)), (path, took, answer[:40])
    assert answer, f"{path}: no answer without the body (the server waits for it)"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close\r\n" in head, head
    return status_of(answer), head, json.loads(body)


@pytest.fixture()
def store(stack):
    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    yield connection
    connection.close()


def test_a_key_in_each_refused_state_is_answered_before_its_body_while_another_key_is_served(api, stack, store):
    rated, rated_api = make_key(api, requests_per_minute=1)
    assert rated_api.submit()["status"]  # its one submission this minute
    spent, _ = make_key(api, daily_credits=1)
    full, _ = make_key(api, max_queued=1)
    other, other_api = make_key(api)
    day = KEYS.usage(accounting.utc_day(time.time()))
    store.hincrby(day, accounting.spent_field(spent["id"]), accounting.to_micro(1))
    store.hincrby(KEYS.queue_room, full["id"], 1)  # room held for a batch being made: its queue is at its limit
    try:
        cases = [
            ("/v1/jobs", rated["key"], 429, "rate_limited"),
            ("/v1/jobs/track", rated["key"], 429, "rate_limited"),
            ("/v1/jobs", spent["key"], 402, "budget_exceeded"),
            ("/v1/batches", spent["key"], 402, "budget_exceeded"),
            ("/v1/jobs", full["key"], 429, "queue_full"),
            ("/v1/batches", full["key"], 429, "queue_full"),
            ("/v1/jobs", "fhk_0123456789abcdef_" + "A" * 43, 401, "unauthorized"),
        ]
        for path, secret, status, code in cases:
            got, head, body = _answered_without_body(stack, path, secret)
            assert (got, body["error"]["code"]) == (status, code), (path, body)
            assert (b"\r\nRetry-After: " in head) == (status == 429), head
            # Another key is served meanwhile, its body read and judged as usual.
            assert other_api.submit()["status"]
        got, _, body = _answered_without_body(stack, "/v1/flux-2-pro", full["key"])
        assert got == 429 and body["detail"].startswith("queue_full: ")  # BFL's shape on its route
        got, _, body = _answered_without_body(stack, "/v1/batches", other["key"], 2**30)
        assert (got, body["error"]["code"]) == (413, "payload_too_large")  # past MAX_BATCH_BYTES
    finally:
        store.hdel(KEYS.queue_room, full["id"])
        store.hdel(day, accounting.spent_field(spent["id"]))


def test_a_key_within_its_limits_has_its_body_received(api, stack):
    created, _ = make_key(api, requests_per_minute=5, daily_credits=10, max_queued=5)
    with socket.create_connection(("127.0.0.1", int(stack.env["PORT"])), timeout=10) as sock:
        # Large enough that its key's counters are judged from the head (JUDGED_FROM_BYTES): they let it in.
        sock.sendall(_head("/v1/jobs", created["key"], JUDGED_FROM_BYTES))
        sock.settimeout(1)
        with pytest.raises(TimeoutError):
            sock.recv(65536)  # waiting for the body
        sock.sendall(b"{}" + b" " * (JUDGED_FROM_BYTES - 2))
        answer = read_answer(sock, timeout=5)
    assert status_of(answer) == 400  # judged on its body: {} names no model
