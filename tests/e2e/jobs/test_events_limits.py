"""Streams shared between app keys, over real HTTP: each caller's limit (429 past MAX_STREAMS_PER_CALLER) leaves the
other tenant's streams alone, a key's /v1/events never shows another key's job, and readers that never read hold
back no callback or read."""

from __future__ import annotations

import socket
import struct
import time

from conftest import API_TOKEN, ready_payload
from helpers import serve_png
from key_helpers import make_key

from .stream_helpers import open_stream

LIMIT = 20  # MAX_STREAMS_PER_CALLER's default, the stack's


def test_past_its_limit_a_key_gets_429_while_another_key_opens_its_streams(api):
    _, first = make_key(api)
    _, second = make_key(api)
    job = first.submit("[pending] watched by many")
    held = [open_stream(first, f"/v1/jobs/{job['id']}/events") for _ in range(LIMIT)]
    assert {s.status_code for s in held} == {200}
    refused = first.get(f"/v1/jobs/{job['id']}/events")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_streams" and refused.headers["Retry-After"]
    assert first.get("/v1/events").status_code == 429  # one count for both kinds
    # The other tenant is not held back by the first one's streams.
    own = second.submit("[pending] its own")
    others = [open_stream(second, f"/v1/jobs/{own['id']}/events") for _ in range(3)]
    assert {s.status_code for s in others} == {200}
    assert others[0].next_job().data["id"] == own["id"]
    # Closing one gives its place back, to this caller only.
    held.pop().close()
    again = _eventually_open(first, f"/v1/jobs/{job['id']}/events")
    assert again.next_job().data["id"] == job["id"]
    for stream in [*held, *others, again]:
        stream.close()


def _eventually_open(api, path: str):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stream = open_stream(api, path)
        if stream.status_code == 200:
            return stream
        stream.close()
        time.sleep(0.1)  # the closed stream's lease goes back as its web process sees the close
    raise AssertionError("the closed stream's place never came back")


def test_a_key_never_sees_another_keys_job_on_either_stream(api, spy):
    _, mine = make_key(api)
    _, theirs = make_key(api)
    # Each sent to BFL (its task named) before its callback: a job waits in line when the suite's other jobs hold the
    # account's slots, and its request answers before it is sent.
    their_job = theirs.wait_for(theirs.submit("[pending] not yours")["id"], "submitted")
    assert mine.get(f"/v1/jobs/{their_job['id']}/events").status_code == 404
    stream = open_stream(mine, "/v1/events")
    my_job = mine.wait_for(mine.submit("[pending] yours")["id"], "submitted")
    for job, tenant, name in ((their_job, theirs, "theirs"), (my_job, mine, "mine")):
        assert tenant.callback(job["id"], ready_payload(job["bfl_id"], serve_png(spy, name))).status_code == 200
    shown = stream.jobs_until(lambda e: e.data["id"] == my_job["id"] and e.data["status"] == "stored")
    assert {e.data["id"] for e in shown} == {my_job["id"]}
    assert {e.data["key_id"] for e in shown} == {mine_key_id(mine)}
    stream.close()
    # An admin's stream shows both.
    everything = open_stream(api, "/v1/events")
    other = theirs.submit("[pending] seen by the admin")
    assert everything.jobs_until(lambda e: e.data["id"] == other["id"])[-1].data["key_id"] is not None
    everything.close()


def mine_key_id(key_api) -> str:
    return key_api.get("/v1/jobs?limit=1").json()["jobs"][0]["key_id"]


def _never_reading(stack, path: str, token: str = API_TOKEN) -> socket.socket:
    """A stream whose client never reads a byte after its request (its receive window as small as it goes)."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


def test_readers_that_never_read_hold_back_no_callback_or_read(api, spy, stack):
    keys = [make_key(api)[1] for _ in range(4)]
    jobs = [key.submit(f"[pending] hostile {n}") for n, key in enumerate(keys)]
    hostile = [_never_reading(stack, "/v1/events", key.http.headers["Authorization"].split()[1])
               for key in keys for _ in range(LIMIT)]
    try:
        # Events pile up for them (every job the keys make), while callbacks and reads go on for everyone.
        for n in range(8):
            key = keys[n % len(keys)]
            job = key.submit(f"[pending] meanwhile {n}")
            assert key.callback(job["id"], ready_payload(job["bfl_id"], serve_png(spy, f"m{n}"))).status_code == 200
            assert key.get(f"/v1/jobs/{job['id']}", timeout=5).status_code == 200
        for key, job in zip(keys, jobs, strict=True):
            assert key.get(f"/v1/jobs/{job['id']}", timeout=5).status_code == 200
        watcher = open_stream(api, f"/v1/jobs/{jobs[0]['id']}/events")
        assert watcher.next_job().data["id"] == jobs[0]["id"]
        watcher.close()
    finally:
        for sock in hostile:
            sock.close()


def _reset_after_asking(stack, path: str, token: str) -> None:
    """A client that asks for a stream and resets the connection before the answer: the web's first write fails."""
    sock = _never_reading(stack, path, token)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    sock.close()


def test_streams_whose_clients_reset_before_the_answer_give_their_places_back(api, stack):
    _, hasty = make_key(api)
    _, other = make_key(api)
    token = hasty.http.headers["Authorization"].split()[1]
    job = hasty.submit("[pending] asked for and dropped")
    for _ in range(3 * LIMIT):
        _reset_after_asking(stack, f"/v1/jobs/{job['id']}/events", token)
    # Every place comes back (a failed first write abandons the stream's lease): the key opens its whole limit.
    held = [_eventually_open(hasty, f"/v1/jobs/{job['id']}/events") for _ in range(LIMIT)]
    assert held[-1].next_job().data["id"] == job["id"]
    own = other.submit("[pending] the other tenant's")
    mine = open_stream(other, f"/v1/jobs/{own['id']}/events")
    assert mine.status_code == 200 and mine.next_job().data["id"] == own["id"]
    for stream in [*held, mine]:
        stream.close()
