"""What a key holds is bounded (docs/operating.md, issue 83), over real HTTP against the session stack and a second web process:
past its ``max_queued`` a key's ``POST /v1/jobs``, ``POST /v1/{model}`` (BFL's shape), track and batch answer ``429``
``queue_full`` with ``Retry-After`` and create nothing (no job, no batch, no ``Idempotency-Key`` answer kept), while
another key goes on; over two web processes at once exactly the limit is taken. Each key has ``max_active`` 1 and its
first job stays at the simulator (``[pending]``), so the rest stay ``queued``."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import API
from devtools.processes import wait_until
from helpers import assert_error, csrf_of, sign_in
from key_helpers import as_key, make_key, second_web


def _post(client: API, prompt: str, **headers: str):
    return client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"[pending] {prompt}"}},
                       headers=headers or None)


def _key_object(admin: API, key_id: str) -> dict:
    return admin.get(f"/v1/keys/{key_id}").json()


def _with_one_at_bfl(admin: API, **limits) -> tuple[dict, API]:
    """A key with ``max_active`` 1 whose first job holds its slot at the simulator: its next ones wait queued."""
    created, client = make_key(admin, max_active=1, **limits)
    first = _post(client, "holds the slot")
    assert first.status_code == 202, first.text
    admin.wait_for(first.json()["id"], "submitted")
    return created, client


@pytest.fixture()
def keys(api, sim):
    made: list[str] = []
    yield made
    for key_id in made:  # their queued jobs end (key_revoked): the session stack's lines are left as they were
        api.delete(f"/v1/keys/{key_id}")


def test_every_submitting_route_answers_queue_full_past_max_queued_and_creates_nothing(api, keys):
    a, app = _with_one_at_bfl(api, max_queued=3)
    b, other = _with_one_at_bfl(api)
    keys += [a["id"], b["id"]]
    assert a["max_queued"] == 3 and b["max_queued"] is None
    queued = [_post(app, f"a {n}") for n in range(3)]
    assert [r.status_code for r in queued] == [202] * 3 and {r.json()["status"] for r in queued} == {"queued"}

    refused = _post(app, "one too many", **{"Idempotency-Key": "queue-full-1"})
    error = assert_error(refused, 429, "queue_full")
    assert refused.headers["Retry-After"] == "60"
    assert "holds 3 jobs and batch items queued for BFL, its limit of 3 (max_queued)" in error["message"]
    assert "nothing was created" in error["message"] and "raise the key's max_queued" in error["message"]
    bfl = app.post("/v1/flux-2-pro", json={"prompt": "[pending] in BFL's shape"})
    assert bfl.status_code == 429 and bfl.json()["detail"].startswith("queue_full: this app key holds 3")
    assert "Retry-After" in bfl.headers
    assert_error(app.post("/v1/jobs/track", json={"bfl_id": "task-elsewhere-1"}), 429, "queue_full")
    batch = app.post("/v1/batches", json={"model": "flux-2-pro", "items": [{"input": {"prompt": "[pending] b"}}]})
    assert "this batch's 1 item would pass the limit of 3" in assert_error(batch, 429, "queue_full")["message"]

    assert len(app.get("/v1/jobs", params={"limit": 100}).json()["jobs"]) == 4  # the one at BFL and three queued
    assert app.get("/v1/batches").json()["batches"] == []
    assert _key_object(api, a["id"])["queued"] == 3
    # B, at the same time, goes on under its own limit.
    assert [_post(other, f"b {n}").status_code for n in range(3)] == [202] * 3

    # Room again once one of A's queued jobs ends: the refused request's key was kept for nothing, it is made now.
    assert app.post(f"/v1/jobs/{queued[0].json()['id']}/cancel").status_code == 200
    again = _post(app, "one too many", **{"Idempotency-Key": "queue-full-1"})
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers


def test_exactly_max_queued_is_taken_over_two_web_processes_at_once(api, stack, keys):
    a, app = _with_one_at_bfl(api, max_queued=5)
    b, other = _with_one_at_bfl(api, max_queued=5)
    keys += [a["id"], b["id"]]
    with second_web(stack.env) as second:
        clients = [app, as_key(second, app.http.headers["Authorization"].split()[1])]
        others = [other, as_key(second, other.http.headers["Authorization"].split()[1])]

        def send(n: int):
            # A's twenty and B's four at the same time, each half through each web process.
            return ("b", _post(others[n % 2], f"race {n}")) if n % 6 == 0 else ("a", _post(clients[n % 2], f"race {n}"))

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(24)))

    codes = {name: sorted(r.status_code for who, r in answers if who == name) for name in ("a", "b")}
    assert codes == {"a": [202] * 5 + [429] * 15, "b": [202] * 4}
    assert {r.json()["error"]["code"] for _, r in answers if r.status_code == 429} == {"queue_full"}
    wait_until(lambda: _key_object(api, a["id"])["queued"] == 5, timeout=5, message="A's five queued jobs")
    assert len(app.get("/v1/jobs", params={"limit": 100}).json()["jobs"]) == 6


def test_the_dashboards_key_form_sets_max_queued_and_shows_the_default(api, keys):
    http, signed_in = sign_in(api.base_url)
    assert signed_in.status_code == 303
    page = http.get(f"{api.base_url}/keys", timeout=10).text
    assert re.search(r'name="max_queued" inputmode="numeric" placeholder="20000"', page)

    made = http.post(f"{api.base_url}/keys", data={"csrf_token": csrf_of(page), "name": "form-queue", "max_queued": "7"},
                     timeout=10)

    assert made.status_code == 201, made.text[:300]
    key = next(k for k in api.get("/v1/keys").json()["keys"] if k["name"] == "form-queue")
    keys.append(key["id"])
    assert key["max_queued"] == 7
    refused = http.post(f"{api.base_url}/keys", data={"csrf_token": csrf_of(page), "name": "form-bad",
                                                      "max_queued": "seven"}, timeout=10)
    assert refused.status_code == 400 and "it must be a whole number" in refused.text and "max_queued" in refused.text
