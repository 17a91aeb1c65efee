"""Batches made one at a time, in turns between keys (docs/api.md with docs/operating.md's bulkheads), over real HTTP:
while a batch is being made, others wait for their turn in their web process's room, which holds no work permit, so
another key's jobs and reads go on; a key whose batches fill its places in the room is answered 503 `batches_busy` with
Retry-After at once and nothing made, and another key's batch still finds a place; each waiting batch is made once the
turn is free, the other key's before the rest of the first key's. The turn is held here as another process making a
batch would hold it: through the store."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from devtools.processes import wait_until
from fluxhook.lifecycle.batching import MAKING_ITEMS_AT_ONCE
from fluxhook.store.batch_turns import BatchTurns, Rules
from key_helpers import make_key
from receiver.batch_room import PLACES_PER_KEY

WEB_PROCESSES = 2  # the suite's stack (WEB_CONCURRENCY)
X_WAITING = WEB_PROCESSES * PLACES_PER_KEY  # the most of one key's batches that can wait at once
RULES = Rules(items_at_once=MAKING_ITEMS_AT_ONCE, lease=60)


def _post_batch(base_url: str, token: str, name: str) -> requests.Response:
    return requests.post(f"{base_url}/v1/batches", timeout=90,
                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"making-{name}"},
                         json={"model": "flux-2-pro", "items": [{"input": {"prompt": f"[pending] made {name}"}}]})


def _waiting(turns: BatchTurns, key_id: str) -> int:
    return sum(member.startswith(key_id + ":") for member in turns.waiters())


def test_a_keys_batches_wait_in_their_own_places_and_another_keys_batch_is_made_before_the_rest(stack, api, sim):
    x_key, x = make_key(api)
    v_key, v = make_key(api)
    turns = BatchTurns(redis.Redis.from_url(stack.env["REDIS_URL"]))
    other = turns.join("key_other_process", MAKING_ITEMS_AT_ONCE, time.time(), RULES)  # another process makes one
    assert other.holds
    posts = X_WAITING + 4
    with ThreadPoolExecutor(posts + 1) as pool:
        try:
            answers = [pool.submit(_post_batch, stack.base_url, x_key["key"], f"x{n}") for n in range(posts)]
            # Every post is either answered or waiting for its turn in Redis: one still on its way in (a loaded
            # machine) would otherwise be counted as waiting here and refused later.
            wait_until(lambda: sum(a.done() for a in answers) >= posts - X_WAITING
                       and sum(a.done() for a in answers) + _waiting(turns, x_key["id"]) == posts,
                       timeout=30, interval=0.1, message="X's posts past its places answered, the rest waiting")
            refused = [a.result() for a in answers if a.done()]
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "batches_busy" and int(answer.headers["Retry-After"]) > 0
                assert "nothing was created" in answer.json()["error"]["message"]
            assert x.get("/v1/batches").json()["batches"] == []  # nothing made while the turn is held

            # V's batch finds a place beside X's, and waits for its turn too.
            vs = pool.submit(_post_batch, stack.base_url, v_key["key"], "v")
            wait_until(lambda: _waiting(turns, v_key["id"]) == 1, timeout=30,
                       interval=0.05, message="V's batch waiting for its turn")
            # V's interactive work is not held by the waiting batches (their work permits are set aside).
            job = v.submit("[pending] V's job beside X's waiting batches")
            sent = v.wait_for(job["id"], "submitted")
            assert sent["status"] == "submitted"
            sim.complete(sent["bfl_id"])
            waiting = [a for a in answers if not a.done()]
            assert waiting and not vs.done(), "every post of X was refused: none waited"
        finally:
            given = turns.end(other, time.time(), RULES)
        made = [a.result() for a in waiting]
        v_answer = vs.result()
    assert all(answer.status_code == 202 for answer in made), [answer.text for answer in made]
    assert v_answer.status_code == 202, v_answer.text
    # The turn freed went to V's batch and X's first, beside each other (a key makes one batch at a time): V's waited
    # behind none of X's.
    assert sorted(member.split(":")[0] for member in given) == sorted([v_key["id"], x_key["id"]]), given
    assert v.get("/v1/batches").json()["batches"][0]["id"] == v_answer.json()["id"]
    listed = {b["id"] for b in x.get("/v1/batches", params={"limit": 100}).json()["batches"]}
    assert listed == {answer.json()["id"] for answer in made}
    for batch_id in [*listed, v_answer.json()["id"]]:
        owner = v if batch_id == v_answer.json()["id"] else x
        assert owner.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
