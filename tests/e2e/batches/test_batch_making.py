"""Batches made one at a time (SPEC §18 with §7's bulkheads), over real HTTP: while a batch is being made, another
waits for its turn in its web process's room, which holds no work permit, so another key's jobs and reads go on; a
full room answers 503 `batches_busy` with Retry-After at once and makes nothing; each waiting batch is made once the
turn is free. The turn is held here as another process making a batch would hold it: through the store."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from devtools.processes import wait_until
from fluxhook.lifecycle.batching import MAKING_AT_ONCE
from fluxhook.store.batches import Batches
from key_helpers import make_key
from receiver.bulkheads import BATCH_MAKING_ROOM

WEB_PROCESSES = 2  # the suite's stack (WEB_CONCURRENCY)
WAITING = WEB_PROCESSES * BATCH_MAKING_ROOM  # the most that can wait at once


def _post_batch(base_url: str, token: str, n: int) -> requests.Response:
    return requests.post(f"{base_url}/v1/batches", timeout=90,
                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"making-{n}"},
                         json={"model": "flux-2-pro", "items": [{"input": {"prompt": f"[pending] made {n}"}}]})


def test_batches_wait_their_turn_in_a_bounded_room_while_another_keys_work_goes_on(stack, api, sim):
    x_key, x = make_key(api)
    _, v = make_key(api)
    turns = Batches(redis.Redis.from_url(stack.env["REDIS_URL"]))
    posts = WAITING + 4
    assert turns.start_making("another process's batch", time.time(), at_once=MAKING_AT_ONCE, lease=60)
    with ThreadPoolExecutor(posts) as pool:
        try:
            answers = [pool.submit(_post_batch, stack.base_url, x_key["key"], n) for n in range(posts)]
            wait_until(lambda: sum(a.done() for a in answers) >= posts - WAITING, timeout=30, interval=0.1,
                       message="the posts past the rooms answered")
            refused = [a.result() for a in answers if a.done()]
            assert len(refused) <= posts - BATCH_MAKING_ROOM  # one process's room alone holds this many
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "batches_busy" and int(answer.headers["Retry-After"]) > 0
                assert "nothing was created" in answer.json()["error"]["message"]
            assert x.get("/v1/batches").json()["batches"] == []  # nothing made while the turn is held

            # V's interactive work is not held by the waiting batches (their work permits are set aside).
            job = v.submit("[pending] V's job beside X's waiting batches")
            sent = v.wait_for(job["id"], "submitted")
            assert sent["status"] == "submitted"
            sim.complete(sent["bfl_id"])
            assert v.get("/v1/batches").json()["batches"] == []
            waiting = [a for a in answers if not a.done()]
            assert waiting, "every post was refused: no room waited"
        finally:
            turns.stop_making("another process's batch")
    made = [a.result() for a in waiting]
    assert all(answer.status_code == 202 for answer in made), [answer.text for answer in made]
    listed = {b["id"] for b in x.get("/v1/batches", params={"limit": 100}).json()["batches"]}
    assert listed == {answer.json()["id"] for answer in made}
    for batch_id in listed:
        assert x.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
