"""Batches over real HTTP against the Procfile's processes: a batch made whole (JSON or NDJSON), its items
jobs like any other, its counts, results as JSON lines and as a ZIP, its stream and its cancel; and in every test the
other key, which sees none of it and whose own work goes on."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import requests

from devtools.processes import wait_until
from fluxhook.media.archives import file_names
from helpers import assert_error, assert_error_status
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
    # Each line carries its item's metadata as given, what maps it back to the app's own item.
    assert [x["metadata"] for x in lines] == [{"sku": 0}, {"sku": 1}, {"sku": 2}]
    assert list(lines[0]) == ["index", "job_id", "status", "metadata", "end_user", "image", "cost", "error"]
    assert requests.get(lines[1]["image"]["url"], timeout=10).status_code == 200
    jobs = a.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"]
    assert sorted((j["batch_index"], j["metadata"]["sku"]) for j in jobs) == [(0, 0), (1, 1), (2, 2)]
    assert {j["batch_id"] for j in jobs} == {batch["id"]}

    archive = zipfile.ZipFile(io.BytesIO(a.get(f"/v1/batches/{batch['id']}/results", params={"format": "zip"}).content))
    names = archive.namelist()
    assert [n.split(".")[0] for n in names] == ["00000", "00001", "00002", "results"] and names[3] == "results.jsonl"
    stored = a.get(f"/v1/jobs/{lines[0]['job_id']}/image").content
    assert archive.read(names[0]) == stored and names[0].endswith((".png", ".jpg"))
    zipped = [json.loads(line) for line in archive.read("results.jsonl").splitlines()]
    assert [(x["index"], x["metadata"]) for x in zipped] == [(0, {"sku": 0}), (1, {"sku": 1}), (2, {"sku": 2})]

    # The other key: none of it exists.
    for path in ("", "/results", "/results?format=zip"):
        assert_error(b.get(f"/v1/batches/{batch['id']}{path}"), 404, "not_found")
    assert_error(b.post(f"/v1/batches/{batch['id']}/cancel"), 404, "not_found")
    assert b.get("/v1/jobs", params={"batch_id": batch["id"]}).json()["jobs"] == []
    assert batch["id"] not in [x["id"] for x in b.get("/v1/batches").json()["batches"]]
    assert batch["id"] in [x["id"] for x in a.get("/v1/batches").json()["batches"]]


def test_every_bad_item_is_named_by_its_index_and_field_and_nothing_is_made(api):
    _, a = make_key(api)
    items = _items(8)
    items[2]["input"]["width"] = "wide"
    items[5] = {"prompt": "a shorthand line", "width": 512}  # a model's fields where 'input' belongs
    items[7]["n"] = 1

    refused = a.post("/v1/batches", json={"model": "flux-2-pro", "items": items})

    error = assert_error_status(refused, 400)
    assert error["code"] == "invalid_items" and set(error) == {"code", "message", "items"}, error
    assert "3 of 8 items would be refused, at index 2, 5, 7 (item 2: input.width: " in error["message"]
    named = error["items"]
    assert [(x["index"], x["field"]) for x in named] == [(2, "input.width"), (5, "prompt"), (5, "width"), (7, "n")]
    assert "put 'prompt' under 'input'" in named[1]["message"] and "width" in named[0]["message"]
    assert a.get("/v1/batches").json()["batches"] == [] and a.get("/v1/jobs").json()["jobs"] == []
    # At most the first 100 bad items are named; the message counts them all.
    many = [{"input": {"prompt": "x", "width": "wide"}}] * 150
    error = assert_error_status(a.post("/v1/batches", json={"model": "flux-2-pro", "items": many}), 400)
    assert error["message"].startswith("150 of 150 items would be refused") and len(error["items"]) == 100
    assert error["items"][-1]["index"] == 99
    assert_error(a.post("/v1/batches", json={"model": "flux-2-pro", "items": []}), 400, "invalid_request")
    assert_error(a.post("/v1/batches", json={"model": "flux-9", "items": _items(1)}), 400, "unknown_model")
    assert a.get("/v1/batches").json()["batches"] == []


def test_ndjson_with_an_idempotency_key_makes_one_batch(api):
    _, a = make_key(api)
    body = "\n".join(json.dumps(item) for item in _items(2)) + "\n"
    headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": uuid.uuid4().hex}

    first = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=body, headers=headers)
    again = a.post("/v1/batches", params={"model": "flux-2-pro"}, data=body, headers=headers)

    assert first.status_code == 202 and again.status_code == 202, first.text
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert [x["id"] for x in a.get("/v1/batches").json()["batches"]] == [first.json()["id"]]
    # The same batch as JSON, its keys in another order: the same request; other items with the same key: refused.
    as_json = a.post("/v1/batches", headers={"Idempotency-Key": headers["Idempotency-Key"]},
                     json={"items": [dict(reversed(item.items())) for item in _items(2)], "model": "flux-2-pro"})
    assert as_json.status_code == 202 and as_json.json()["id"] == first.json()["id"], as_json.text
    assert_error(a.post("/v1/batches", params={"model": "flux-2-pro"}, data=body.replace("0", "9"), headers=headers),
                 422, "idempotency_key_reused")
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


def test_cancel_aborts_what_is_unsent_and_keeps_what_bfl_has_which_is_stored(api, sim):
    _, a = make_key(api, max_active=2)
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(6, "[pending] held")}).json()
    theirs = b.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2, "[pending] B's")}).json()
    wait_until(lambda: a.get(f"/v1/batches/{batch['id']}").json()["counts"]["submitted"] == 2, timeout=30,
               message="two items at BFL")

    canceled = a.post(f"/v1/batches/{batch['id']}/cancel")

    assert canceled.status_code == 200, canceled.text
    shown = canceled.json()
    assert shown["status"] == "canceled" and shown["ended_at"] is None, shown
    assert (shown["counts"]["aborted"], shown["counts"]["submitted"], shown["counts"]["canceled"]) == (4, 2, 0)
    assert_error(a.post(f"/v1/batches/{batch['id']}/cancel"), 409, "already_ended")
    # The unsent items' results' lines say how they ended, never sent, nothing charged, each its own job still.
    unsent = [json.loads(line) for line in a.get(f"/v1/batches/{batch['id']}/results").text.splitlines()
              if json.loads(line)["status"] == "aborted"]
    assert len(unsent) == 4 and {(x["error"]["code"], x["cost"]) for x in unsent} == {("batch_canceled", None)}
    listed = a.get("/v1/jobs", params={"batch_id": batch["id"], "status": "aborted"}).json()["jobs"]
    assert sorted(j["id"] for j in listed) == sorted(x["job_id"] for x in unsent)
    sent = a.get("/v1/jobs", params={"batch_id": batch["id"], "status": "submitted"}).json()["jobs"]
    assert len(sent) == 2
    for job in sent:  # BFL finishes what it was paid for
        sim.complete(job["bfl_id"])

    def ended():
        now = a.get(f"/v1/batches/{batch['id']}").json()
        assert now["counts"]["canceled"] == 0, now  # never shown canceled on its way to stored
        return now if now["ended_at"] else None

    done = wait_until(ended, timeout=30, interval=0.2, message="the canceled batch to end with its sent items")
    assert done["status"] == "canceled" and done["progress"] == 1
    assert (done["counts"]["stored"], done["counts"]["aborted"]) == (2, 4) and done["cost"]["credits"] > 0
    lines = [json.loads(line) for line in a.get(f"/v1/batches/{batch['id']}/results").text.splitlines()]
    stored = [x for x in lines if x["status"] == "stored"]
    assert sorted(x["job_id"] for x in stored) == sorted(j["id"] for j in sent)
    assert all(requests.get(x["image"]["url"], timeout=10).status_code == 200 for x in stored)
    # B's batch is untouched by A's cancel: still running, its items at BFL, none aborted.
    mine = b.get(f"/v1/batches/{theirs['id']}").json()
    assert mine["status"] == "running" and mine["counts"]["aborted"] == 0, mine
    assert b.post(f"/v1/batches/{theirs['id']}/cancel").status_code == 200
    for job in b.get("/v1/jobs", params={"batch_id": theirs["id"], "status": "submitted"}).json()["jobs"]:
        sim.complete(job["bfl_id"])  # nothing left held at BFL for the next tests


def test_the_batch_stream_sends_its_counts_then_ends(api):
    _, a = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2)}).json()

    with a.get(f"/v1/batches/{batch['id']}/events", stream=True, timeout=60) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in stream.iter_lines(decode_unicode=True) if line.startswith("data:")]

    assert events and events[-1]["status"] == "ended" and events[-1]["counts"]["stored"] == 2
    assert all(e["id"] == batch["id"] for e in events)
    assert len({json.dumps(e["counts"], sort_keys=True) for e in events}) == len(events)  # each one a change


def test_the_zip_names_its_files_from_a_metadata_field_as_the_commands_download_does(api):
    _, a = make_key(api)
    skus = [{"sku": "shoe/red"}, {"sku": "shoe/red"}, {}, {"sku": "00000"}]
    made = a.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"a named shot {i}"}, "metadata": meta} for i, meta in enumerate(skus)]})
    assert made.status_code == 202, made.text
    batch_id = made.json()["id"]
    assert _ended(a, batch_id)["counts"]["stored"] == 4
    path = f"/v1/batches/{batch_id}/results"

    by_index = zipfile.ZipFile(io.BytesIO(a.get(path, params={"format": "zip"}).content)).namelist()
    named = zipfile.ZipFile(io.BytesIO(a.get(path, params={"format": "zip", "name_from": "sku"}).content))
    suffix = "." + by_index[0].split(".")[1]
    assert named.namelist() == [f"shoe_red{suffix}", f"shoe_red-00001{suffix}", f"00002{suffix}",
                                f"00000{suffix}", "results.jsonl"]
    # One rule: the names the command gives the index-named archive's files.
    assert file_names(by_index, dict(enumerate(skus)), "sku") == dict(zip(by_index, named.namelist(), strict=True))
    assert named.read(f"shoe_red-00001{suffix}") == zipfile.ZipFile(io.BytesIO(
        a.get(path, params={"format": "zip"}).content)).read(f"00001{suffix}")

    for params in ({"name_from": "sku"}, {"format": "zip", "name_from": ""}):
        refused = a.get(path, params=params)
        assert refused.status_code == 400 and "name_from" in refused.json()["error"]["message"], refused.text
