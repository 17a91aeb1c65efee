"""What a batch's body may hold (docs/operating.md "What a key holds is bounded", docs/api.md; issue 83 point 4), over
real HTTP: a body past MAX_BATCH_BYTES is answered 413 `payload_too_large` naming the setting and its limit, announced
or chunked, and nothing is made, while another key's batch at the limit is made; a body read a piece at a time means
what it means read whole; a key given twice in any JSON body is answered 400 naming it, on every JSON route, and nothing
is made. In-process web apps (werkzeug's server) on a Redis database of their own, with MAX_BATCH_BYTES at its
smallest."""

from __future__ import annotations

import http.client
import json

import pytest

from conftest import API
from key_helpers import make_key

DB = 15  # the in-process apps' own Redis database (no worker of the stack uses it)
LIMIT = 65_536  # MAX_BATCH_BYTES's smallest


@pytest.fixture()
def web(local_app) -> tuple[API, API, API]:
    """The app, as the admin, as key A and as key B."""
    admin, _ = local_app(DB, MAX_BATCH_BYTES=str(LIMIT))
    _, a = make_key(admin)
    _, b = make_key(admin)
    return admin, a, b


def _body_of_size(size: int, tag: str) -> bytes:
    """A valid batch of ``size`` bytes exactly (its last item's prompt padded)."""
    body = {"model": "flux-2-pro", "items": [{"input": {"prompt": f"[pending] {tag} {i}"}} for i in range(50)]}
    raw = json.dumps(body).encode()
    body["items"][-1]["input"]["prompt"] += "x" * (size - len(raw))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def _batches(key: API) -> list[dict]:
    return key.get("/v1/batches").json()["batches"]


def _post(key: API, raw, mimetype: str = "application/json", **params):
    return key.post("/v1/batches", data=raw, headers={"Content-Type": mimetype}, params=params, timeout=30)


def test_a_body_past_max_batch_bytes_is_refused_413_announced_or_chunked_and_one_at_the_limit_is_made(web):
    _, a, b = web
    too_large = _body_of_size(LIMIT + 1, "A's")
    for sent in (too_large, (too_large[i:i + 4096] for i in range(0, len(too_large), 4096))):  # chunked: no length
        refused = _post(a, sent)
        assert refused.status_code == 413, refused.text
        error = refused.json()["error"]
        assert error["code"] == "payload_too_large" and "MAX_BATCH_BYTES (65,536 bytes)" in error["message"], error
    ndjson = b"\n".join(json.dumps({"input": {"prompt": "x" * 1000}}).encode() for _ in range(70))
    refused = _post(a, (ndjson[i:i + 1000] for i in range(0, len(ndjson), 1000)), "application/x-ndjson",
                    model="flux-2-pro")
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large", refused.text
    assert _batches(a) == []  # nothing made

    _refused_then_read_on_one_connection(a, [(too_large, 413)])

    made = _post(b, _body_of_size(LIMIT, "B's"))  # B's, at the limit, after A's refusals
    assert made.status_code == 202, made.text
    assert made.json()["counts"]["total"] == 50 and [x["id"] for x in _batches(b)] == [made.json()["id"]]
    assert _batches(a) == []


def _refused_then_read_on_one_connection(key: API, refusals: list[tuple[bytes, int]]) -> None:
    """Each body refused with its status, then the key's batches read on the same kept-alive connection: a refusal
    leaves its connection usable, its body read (not parsed) to the end."""
    host, port = key.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": key.http.headers["Authorization"], "Content-Type": "application/json"}
    try:
        for body, status in refusals:
            connection.request("POST", "/v1/batches", body=body, headers=headers)
            answer = connection.getresponse()
            assert answer.status == status and json.loads(answer.read())["error"]["code"], answer.status
            connection.request("GET", "/v1/batches", headers=headers)
            again = connection.getresponse()
            assert again.status == 200 and json.loads(again.read())["batches"] == []
    finally:
        connection.close()


def test_a_large_body_refused_early_leaves_its_connection_to_gunicorn_usable(api):
    # The Procfile's web (gunicorn and its buffering worker), with the default MAX_BATCH_BYTES: a 4 MiB body refused
    # at its 14th byte, then the same key's read on the same connection; B's batch meanwhile is made.
    _, a = make_key(api)
    _, b = make_key(api)
    _refused_then_read_on_one_connection(a, [(b'{"model": 1,, ' + b" " * 4 * 2**20 + b"}", 400)] * 2)
    made = b.post("/v1/batches", json={"model": "flux-2-pro", "items": [{"input": {"prompt": "[pending] B's"}}]})
    assert made.status_code == 202, made.text
    assert b.post(f"/v1/batches/{made.json()['id']}/cancel").status_code == 200


def test_a_body_read_in_pieces_makes_the_batch_it_says_json_or_ndjson(web):
    _, a, b = web
    items = [{"input": {"prompt": f"[pending] item {i} \u00e9\u2028", "seed": 2**64 - 1 - i}, "metadata": {"i": i}}
             for i in range(40)]
    as_json = json.dumps({"model": "flux-2-pro", "items": items, "metadata": {"run": 1}}, ensure_ascii=False).encode()
    made = _post(a, (as_json[i:i + 333] for i in range(0, len(as_json), 333)))
    as_ndjson = "\r\n".join(json.dumps(item, ensure_ascii=False) for item in items).encode() + b"\n\n"
    made_nd = _post(b, (as_ndjson[i:i + 77] for i in range(0, len(as_ndjson), 77)), "application/x-ndjson",
                    model="flux-2-pro", metadata='{"run": 2}')
    for key, answer, run in ((a, made, 1), (b, made_nd, 2)):
        assert answer.status_code == 202, answer.text
        batch = answer.json()
        assert batch["counts"]["total"] == 40 and batch["metadata"] == {"run": run}
        jobs = key.get("/v1/jobs", params={"batch_id": batch["id"], "limit": 100}).json()["jobs"]
        assert sorted(job["metadata"]["i"] for job in jobs) == list(range(40))
        assert {job["prompt"] for job in jobs} == {item["input"]["prompt"] for item in items}
    assert {x["id"] for x in _batches(a)} == {made.json()["id"]} and {x["id"] for x in _batches(b)} == {
        made_nd.json()["id"]}


def test_a_key_given_twice_in_any_json_body_is_refused_400_by_name_and_nothing_is_made(web):
    admin, a, b = web
    twice = '{"model": "flux-2-pro", "model": "flux-dev", "input": {"prompt": "a fox"}}'
    refused = a.post("/v1/jobs", data=twice, headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and 'the key "model" is given more than once' in refused.json()["error"]["message"]

    nested = '{"model": "flux-2-pro", "items": [{"input": {"prompt": "a", "prompt": "b"}}]}'
    refused = _post(a, nested.encode())
    assert refused.status_code == 400 and 'the key "prompt"' in refused.json()["error"]["message"], refused.text
    refused = _post(a, b'{"input": {"prompt": "a"}}\n{"input": {"prompt": "a"}, "input": {}}', "application/x-ndjson",
                    model="flux-2-pro")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"].startswith('line 2 of the NDJSON body is not a JSON object: the key "input"')

    # The BFL-compatible route refuses a body BFL would refuse as BFL does: 422, in BFL's shape.
    refused = a.post("/v1/flux-2-pro", data='{"prompt": "a", "prompt": "b"}', headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and refused.json()["detail"].startswith('the key "prompt" is given more than once')
    refused = admin.post("/v1/keys", data='{"name": "x", "name": "y"}', headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and 'the key "name"' in refused.json()["error"]["message"]
    b_key = next(key for key in admin.get("/v1/keys").json()["keys"])
    refused = admin.request("PATCH", f"/v1/keys/{b_key['id']}", data='{"max_active": 1, "max_active": 100}',
                            headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and 'the key "max_active"' in refused.json()["error"]["message"]
    keys = admin.get("/v1/keys").json()["keys"]
    assert all(key["name"] not in ("x", "y") for key in keys) and {key["max_active"] for key in keys} == {None}

    assert a.get("/v1/jobs").json()["jobs"] == [] and _batches(a) == []  # nothing made for A
    ok = b.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] B's, the same key in two "
                                                                            "objects", "seed": 1}, "metadata": {"seed": 2}})
    assert ok.status_code == 202, ok.text  # B's body, each key once in each object, is made


def test_a_batch_announced_past_max_batch_bytes_is_refused_before_its_body_is_received(api):
    # The Procfile's web: 100 MiB announced (past the default MAX_BATCH_BYTES, within what the web takes at all): the
    # head alone answers 413, the body never sent (the client waits for 100-continue and gets the refusal instead),
    # and B's batch is made meanwhile.
    _, a = make_key(api)
    _, b = make_key(api)
    host, port = a.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", "/v1/batches")
        for name, value in (("Authorization", a.http.headers["Authorization"]), ("Content-Type", "application/json"),
                            ("Content-Length", str(100 * 2**20)), ("Expect", "100-continue")):
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413 and json.loads(answer.read())["error"]["code"] == "payload_too_large"
    finally:
        connection.close()
    made = b.post("/v1/batches", json={"model": "flux-2-pro", "items": [{"input": {"prompt": "[pending] B's"}}]})
    assert made.status_code == 202, made.text
    assert b.post(f"/v1/batches/{made.json()['id']}/cancel").status_code == 200
