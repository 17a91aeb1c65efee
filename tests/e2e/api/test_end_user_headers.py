"""The X-End-User header over raw sockets against the Procfile's gunicorn web: an end user its key blocked is refused
403 from the head alone (a large body announced, never sent), while the key's other end user and another key's end
user of the same name are served; a header sent twice is refused 400 naming it (BFL's 422 on its drop-in route), not
read as one name joined with ',', and nothing is made."""

from __future__ import annotations

import json
import socket

from helpers import read_answer, status_of
from key_helpers import make_key

# Far more than any client sends before its answer: the answer must come without it.
ANNOUNCED = 50 * 2**20


def _exchange(stack, path: str, secret: str, headers: list[tuple[str, str]], body: bytes | None) -> tuple[int, dict]:
    """Send a POST's head (``headers`` as given, a header repeated if listed twice) and ``body``, or only the head
    announcing ``ANNOUNCED`` bytes when ``body`` is None; the answer's status and JSON."""
    length = ANNOUNCED if body is None else len(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: fluxhook\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", int(stack.env["PORT"])), timeout=10) as sock:
        sock.sendall(head + (body or b""))
        answer = read_answer(sock, timeout=5)
    assert answer, f"{path}: no answer (the server waits for the body)"
    return status_of(answer), json.loads(answer.partition(b"\r\n\r\n")[2])


def _job(prompt: str) -> bytes:
    return json.dumps({"model": "flux-2-pro", "input": {"prompt": prompt}}).encode()


def test_a_blocked_end_user_named_by_the_header_is_refused_before_the_body(api, stack):
    created, app = make_key(api)
    other, _ = make_key(api)
    assert api.post(f"/v1/keys/{created['id']}/end_users/x/block").status_code == 200

    for path in ("/v1/jobs", "/v1/batches"):
        status, body = _exchange(stack, path, created["key"], [("X-End-User", "x")], None)
        assert (status, body["error"]["code"]) == (403, "end_user_blocked"), (path, body)
        assert "end user 'x'" in body["error"]["message"] and "blocked" in body["error"]["message"]
    status, body = _exchange(stack, "/v1/flux-2-pro", created["key"], [("X-End-User", "x")], None)
    assert status == 403 and body["detail"].startswith("end_user_blocked: "), body  # BFL's shape on its route
    # The key's other end user, and another key's 'x', are served as usual (their bodies read).
    assert _exchange(stack, "/v1/jobs", created["key"], [("X-End-User", "y")], _job("y goes on"))[0] == 202
    assert _exchange(stack, "/v1/jobs", other["key"], [("X-End-User", "x")], _job("b's x goes on"))[0] == 202
    assert app.get("/v1/jobs?end_user=x").json()["jobs"] == []


def test_two_x_end_user_headers_are_refused_not_joined(api, stack):
    created, app = make_key(api, end_user_limits={"requests_per_minute": 100})
    twice = [("X-End-User", "a"), ("X-End-User", "b")]

    status, body = _exchange(stack, "/v1/jobs", created["key"], twice, _job("two names"))
    assert (status, body["error"]["code"]) == (400, "invalid_request"), body
    assert "X-End-User" in body["error"]["message"] and "2 times" in body["error"]["message"]
    status, body = _exchange(stack, "/v1/flux-2-pro", created["key"], twice, json.dumps({"prompt": "two"}).encode())
    assert status == 422 and "X-End-User" in body["detail"], body
    # Twice, announcing a large body never sent: refused from the head too.
    status, body = _exchange(stack, "/v1/jobs", created["key"], twice, None)
    assert status == 400 and "X-End-User" in body["error"]["message"], body
    assert app.get("/v1/jobs").json()["jobs"] == []
    # One header naming 'a,b' is one end user of that name, as before.
    status, body = _exchange(stack, "/v1/jobs", created["key"], [("X-End-User", "a,b")], _job("one name"))
    assert status == 202 and body["end_user"] == "a,b", body
