"""A batch's items that end unsent (its cancel, or its Cancel-After) over real HTTP against the Procfile's processes:
they keep no record of their own in Redis, yet each is a job like any other: its id answers aborted with its batch and
index, the batch's item list holds it, and its results line carries its job id and metadata (read from the batch's
input in storage); the other key sees none of it; and what an aborted item leaves in Redis stays within 256 bytes."""

from __future__ import annotations

import json

from redis import Redis

from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key

# What an item that ended unsent may leave in Redis (docs/operating.md, "What a key makes costs that key").
UNSENT_ITEM_BYTES = 256


def _items(n: int) -> list[dict]:
    return [{"input": {"prompt": f"[pending] a catalog shot {i}"}, "metadata": {"sku": f"SKU-{i:04d}"}} for i in range(n)]


def _results(client, batch_id: str) -> list[dict]:
    answer = client.get(f"/v1/batches/{batch_id}/results")
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines()]


def _listed(client, batch_id: str, limit: int, **params) -> list[dict]:
    """Every job the list of the batch's items gives, page after page of ``limit``."""
    jobs, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"batch_id": batch_id, "limit": limit, **params,
                                              **({"cursor": cursor} if cursor else {})}).json()
        jobs += page["jobs"]
        if not (cursor := page["next_cursor"]):
            return jobs


def _counts(client, batch_id: str, **wanted: int) -> dict:
    def reached():
        batch = client.get(f"/v1/batches/{batch_id}").json()
        return batch if all(batch["counts"][status] == n for status, n in wanted.items()) else None
    return wait_until(reached, timeout=30, interval=0.2, message=f"batch {batch_id} to count {wanted}")


def _every_item_answers(a, b, batch_id: str, code: str) -> None:
    """Each of the batch's 10 items answers as a job of its own, from its id, its list and its results, to A alone."""
    listed = _listed(a, batch_id, 100)
    assert sorted(j["batch_index"] for j in listed) == list(range(10)), listed
    assert [j["id"] for j in listed] == sorted((j["id"] for j in listed), reverse=True)  # newest first, as any list
    by_index = {j["batch_index"]: j for j in listed}
    assert all(by_index[i]["metadata"] == {"sku": f"SKU-{i:04d}"} and by_index[i]["batch_id"] == batch_id
               for i in range(10))
    # Paged, every item once.
    assert [j["id"] for j in _listed(a, batch_id, 3)] == [j["id"] for j in listed]
    aborted = [j for j in listed if j["status"] == "aborted"]
    assert len(aborted) == 9 and [j["id"] for j in _listed(a, batch_id, 4, status="aborted")] == [
        j["id"] for j in aborted]
    for job in aborted:
        shown = a.get(f"/v1/jobs/{job['id']}")
        assert shown.status_code == 200, shown.text
        one = shown.json()
        assert (one["id"], one["status"], one["batch_id"], one["batch_index"], one["metadata"], one["error"]["code"],
                one["bfl_id"], one["cost"]) == (job["id"], "aborted", batch_id, job["batch_index"], job["metadata"],
                                                 code, None, None)
    lines = _results(a, batch_id)
    assert [x["index"] for x in lines] == list(range(10))
    # The app maps every line, aborted ones included, back to its SKU from the results alone.
    assert [(x["job_id"], x["metadata"]) for x in lines] == [(by_index[i]["id"], {"sku": f"SKU-{i:04d}"})
                                                             for i in range(10)]
    assert sum(x["status"] == "aborted" and x["error"]["code"] == code for x in lines) == 9
    # The other key: none of it exists.
    for job in aborted:
        assert_error(b.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert b.get("/v1/jobs", params={"batch_id": batch_id}).json()["jobs"] == []
    assert_error(b.get(f"/v1/batches/{batch_id}/results"), 404, "not_found")


def test_a_canceled_batchs_aborted_items_answer_by_id_list_and_results(api, sim):
    _, a = make_key(api, max_active=1)
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(10)}).json()
    theirs = b.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(2)}).json()
    _counts(a, batch["id"], submitted=1)

    assert a.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200
    _counts(a, batch["id"], aborted=9, submitted=1)

    _every_item_answers(a, b, batch["id"], "batch_canceled")
    # B's own batch, beside it, is untouched and its items its own.
    assert len(_listed(b, theirs["id"], 100)) == 2 and _results(b, theirs["id"])[1]["metadata"] == {"sku": "SKU-0001"}
    assert b.post(f"/v1/batches/{theirs['id']}/cancel").status_code == 200
    for client, batch_id in ((a, batch["id"]), (b, theirs["id"])):
        for job in _listed(client, batch_id, 100, status="submitted"):
            sim.complete(job["bfl_id"])  # nothing left held at BFL for the next tests


def test_items_past_their_cancel_after_answer_by_id_list_and_results(api, sim):
    _, a = make_key(api, max_active=1)
    _, b = make_key(api)
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(10)},
                   headers={"Cancel-After": "5s"}).json()
    _counts(a, batch["id"], submitted=1)

    _counts(a, batch["id"], aborted=9, canceled=1)

    _every_item_answers(a, b, batch["id"], "deadline_exceeded")
    for job in _listed(a, batch["id"], 100, status="canceled"):
        sim.complete(job["bfl_id"])  # its slot freed for the next tests


def test_an_aborted_item_leaves_at_most_256_bytes_in_redis(api, stack, sim):
    redis = Redis.from_url(stack.env["REDIS_URL"])
    _, a = make_key(api, max_active=1)
    _, b = make_key(api, max_active=1)
    theirs = b.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(3)}).json()
    _counts(b, theirs["id"], submitted=1)

    def used() -> int:
        return sum(redis.memory_usage(key, samples=0) or 0 for key in redis.scan_iter(count=1000))

    before = used()
    batch = a.post("/v1/batches", json={"model": "flux-2-pro", "items": _items(1000)}).json()
    _counts(a, batch["id"], submitted=1)
    assert a.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200
    _counts(a, batch["id"], aborted=999, submitted=1)

    grown = used() - before
    print(f"redis bytes per aborted item: {grown / 999:.0f}")
    assert grown / 999 <= UNSENT_ITEM_BYTES, f"{grown / 999:.0f} bytes an aborted item"
    # Every one still maps back to its SKU from the results; B's batch goes on, its own.
    lines = _results(a, batch["id"])
    assert [x["metadata"]["sku"] for x in lines] == [f"SKU-{i:04d}" for i in range(1000)]
    assert all(x["job_id"] for x in lines)
    assert b.get(f"/v1/batches/{theirs['id']}").json()["counts"]["queued"] == 2
    for client, batch_id in ((a, batch["id"]), (b, theirs["id"])):
        client.post(f"/v1/batches/{batch_id}/cancel")
        for job in _listed(client, batch_id, 100, status="submitted"):
            sim.complete(job["bfl_id"])
