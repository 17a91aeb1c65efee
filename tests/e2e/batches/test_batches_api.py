"""Batches over real HTTP against the Procfile's processes (SPEC §18): a batch made whole (JSON or NDJSON), its items
jobs like any other, its counts, results as JSON lines and as a ZIP, its stream and its cancel; and in every test the
other key, which sees none of it and whose own work goes on."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import requests

from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key


def _items(n: int, prompt: str = "a catalog shot") -> list[dict]:
    return [{"input": {"prompt": f"{prompt} {i}"}, "metadata": {"sku": i}} for i in range(n)]


def _ended(client, batch_id: str, timeout: float = 60.0) -> dict:
    return wait_until(lambda: (b := client.get(f"/v1/batches/{batch_id}").json())["status"] != "running" and b,
                      timeout=timeout, interval=0.3, message=f"batch {batch_id} to end")


def test_a_batch_runs_its_items_as_jobs_and_gives_its_results_back_in_order(api):
    _, a = make_key(api)
    _, b = make_key(api)

    made = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(3), "metadata": {"run": "x"}})

    assert made.status_code == 202, made.text
    batch = made.json()
    assert batch["id"].startswith("bat_") and batch["counts"]["total"] == 3 and batch["metadata"] == {"run": "x"}
    theirs = b.submit("B's own job")  # the other key's work goes on beside it
    ended = _ended(a, batch["id"])
    assert ended["status"] == "ended" and ended["counts"]["stored"] == 3 and ended["progress"] == 1
    assert ended["cost"]["credits"] > 0 and ended["ended_at"]
    assert b.wait_for(theirs["id"], "stored")["status"] == "stored"

    lines = [json.loads(line) for line in a.get(f"/v1/batches/{batch['id']}/results").text.splitlines()]
    assert [(x["index"], x["status"]) for x in lines] == [(0, "stored"), (1, "stored"), (2, "stored")]
    assert requests.get(lines[1]["image"]["url"], timeout=10).status_code == 200
    jobs = a.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"]
    assert sorted((j["batch_index"], j["metadata"]["sku"]) for j in jobs) == [(0, 0), (1, 1), (2, 2)]
    assert {j["batch_id"] for j in jobs} == {batch["id"]}

    archive = zipfile.ZipFile(io.BytesIO(a.get(f"/v1/batches/{batch['id']}/results", params={"format": "zip"}).content))
    names = archive.namelist()
    assert [n.split(".")[0] for n in names] == ["00000", "00001", "00002", "results"] and names[3] == "results.jsonl"
    stored = a.get(f"/v1/jobs/{lines[0]['job_id']}/image").content
    assert archive.read(names[0]) == stored and names[0].endswith((".png", ".jpg"))

    # The other key: none of it exists.
    for path in ("", "/results", "/results?format=zip"):
        assert_error(b.get(f"/v1/batches/{batch['id']}{path}"), 404, "not_found")
    assert_error(b.post(f"/v1/batches/{batch['id']}/cancel"), 404, "not_found")
    assert b.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"] == []
    assert batch["id"] not in [x["id"] for x in b.get("/v1/batches").json()["batches"]]
    assert batch["id"] in [x["id"] for x in a.get("/v1/batches").json()["batches"]]


def test_a_bad_item_is_named_by_its_index_and_nothing_is_made(api):
    _, a = make_key(api)
    items = _items(4)
    items[2]["input"]["width"] = "wide"

    refused = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items})

    error = assert_error(refused, 400, "invalid_items")
    assert "at index 2 (item 2: " in error["message"] and "width" in error["message"]
    assert a.get("/v1/batches").json()["batches"] == [] and a.get("/v1/jobs").json()["jobs"] == []
    assert_error(a.post("/v1/batches", json={"model": "flux-2-pro", "items": []}), 400, "invalid_request")
    assert_error(a.post("/v1/batches", json={"model": "flux-9", "items": _items(1)}), 400, "unknown_model")
    assert_error(a.post("/v1/batches", json={"model": "flux-2-pro", "items": [{"input": {"prompt": "x"}, "n": 1}]}),
                 400, "unknown_field")


def test_ndjson_with_an_idempotency_key_makes_one_batch(api):
    _, a = make_key(api)
    body = "\n".join(json.dumps(item) for item in _items(2)) + "\n"
    headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": uuid.uuid4().hex}

    first = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=body, headers=headers)
    again = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=body, headers=headers)

    assert first.status_code == 202 and again.status_code == 202, first.text
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert [x["id"] for x in a.get("/v1/batches").json()["batches"]] == [first.json()["id"]]
    _, b = make_key(api)
    assert b.get("/v1/batches").json()["batches"] == []  # the other key: the same key, a batch of its own
    assert b.post("/v1/batches", params={"model": "flux-2-pro"}, data=body, headers=headers).json()["id"] != \
        first.json()["id"]
    ndjson = {"Content-Type": "application/x-ndjson"}
    assert_error(a.post("/v1/batches", params={"model": "flux-2-pro"}, data="{not json\n", headers=ndjson), 400)
    assert_error(a.post("/v1/batches", params={"model": "flux-2-pro", "metadata": "{bad"}, data=body, headers=ndjson),
                 400, "invalid_request")
    # A line may hold U+2028 unescaped, as JSON allows: it is one item, not two lines.
    line = json.dumps({"input": {"prompt": "a line\u2028separator"}}, ensure_ascii=False)
    one = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=(line + "\r\n").encode(), headers=ndjson)
    assert one.status_code == 202, one.text
    assert one.json()["counts"]["total"] == 1


def test_cancel_aborts_what_is_unsent_and_the_batch_says_so(api):
    _, a = make_key(api, max_active=1)
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(5, "[pending] held")}).json()
    wait_until(lambda: a.get(f"/v1/batches/{batch['id']}").json()["counts"]["submitted"] == 1, timeout=30,
               message="one item at BFL")

    canceled = a.post(f"/v1/batches/{batch['id']}/cancel")

    assert canceled.status_code == 200, canceled.text
    shown = canceled.json()
    assert shown["status"] == "canceled" and shown["counts"]["aborted"] == 4 and shown["counts"]["canceled"] == 1
    assert_error(a.post(f"/v1/batches/{batch['id']}/cancel"), 409, "already_ended")
    jobs = a.get("/v1/jobs", params={"batch_id": batch["id"], "status": "aborted"}).json()["jobs"]
    assert len(jobs) == 4 and {j["error"]["code"] for j in jobs} == {"batch_canceled"}
    theirs = b.submit("B after A's cancel")
    assert b.wait_for(theirs["id"], "stored")["status"] == "stored"


def test_the_batch_stream_sends_its_counts_then_ends(api):
    _, a = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2)}).json()

    with a.get(f"/v1/batches/{batch['id']}/events", stream=True, timeout=60) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in stream.iter_lines(decode_unicode=True) if line.startswith("data:")]

    assert events and events[-1]["status"] == "ended" and events[-1]["counts"]["stored"] == 2
    assert all(e["id"] == batch["id"] for e in events)
    assert len({json.dumps(e["counts"], sort_keys=True) for e in events}) == len(events)  # each one a change
