"""A batch turn is fair between keys (docs/api.md "made in turns between keys", issue 83 point 3): while key A floods
10,000-item batches from 8 connections, sending each again as soon as it is answered (503 included), key B's small
batches are answered 202 within 5 s, and B is never answered 503; what A is refused is A's alone. B's figures alone
are measured first, in the same run. The Procfile's processes of this module's own (two web processes) on Redis and
the simulator."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from conftest import API
from devtools.processes import wait_until
from fluxhook.store.batch_turns import BatchTurns
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)
FLOOD_CONNECTIONS = 8
FLOOD_ITEMS = 10_000
B_BATCHES = 4
B_BOUND = 5.0  # docs/api.md: another key's small batch is answered within 5 s


@pytest.fixture(scope="module")
def turns_stack(redis_server, simulator, _spies, tmp_path_factory):
    # A's flood queues 10,000 items a batch: its queued items are not what this module tests.
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("batch-turns")),
                     DB, MAX_QUEUED_PER_KEY="10000000") as running:
        yield running


def _small_batch(session: requests.Session, base_url: str, n: int) -> tuple[int, str, float]:
    started = time.monotonic()
    answer = session.post(f"{base_url}/v1/batches", timeout=60, json={
        "model": "flux-2-pro", "items": [{"input": {"prompt": f"[pending] B's item {n}.{i}"}} for i in range(3)]})
    code = answer.json().get("error", {}).get("code", "") if answer.status_code != 202 else ""
    return answer.status_code, code, time.monotonic() - started


def _b_batches(base_url: str, token: str) -> list[tuple[int, str, float]]:
    """B's batches one after another, a second apart: each one's status, error code and time to its answer."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    answers = []
    for n in range(B_BATCHES):
        answers.append(_small_batch(session, base_url, n))
        time.sleep(1.0)  # B's pace: an app sending a batch now and then, not a flood
    return answers


class Flood:
    """A's connections, each posting a 10,000-item batch again as soon as the last is answered, until stopped."""

    def __init__(self, base_url: str, token: str):
        self.base_url, self.token = base_url, token
        self.body = json.dumps({"model": "flux-2-pro", "items": [
            {"input": {"prompt": f"[pending] A's item {i}"}} for i in range(FLOOD_ITEMS)]}).encode()
        self.stop = threading.Event()
        self.answers: list[tuple[int, str]] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(FLOOD_CONNECTIONS)]

    def _run(self) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        while not self.stop.is_set():
            try:
                answer = session.post(f"{self.base_url}/v1/batches", data=self.body, timeout=90)
            except requests.RequestException as exc:
                self.answers.append((0, type(exc).__name__))
                continue
            code = answer.json().get("error", {}).get("code", "") if answer.status_code != 202 else ""
            self.answers.append((answer.status_code, code))
            if answer.status_code == 503:
                time.sleep(0.2)  # ignores Retry-After, as the attacker did

    def __enter__(self) -> "Flood":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def test_a_keys_small_batch_is_made_within_5_s_while_another_key_floods_10000_item_batches(turns_stack, sim):
    admin = API(turns_stack.base_url)
    a_key, a = make_key(admin, max_active=1)
    b_key, b = make_key(admin, max_active=1)
    turns = BatchTurns(redis.Redis.from_url(turns_stack.env["REDIS_URL"]))

    alone = _b_batches(turns_stack.base_url, b_key["key"])
    assert [status for status, _, _ in alone] == [202] * B_BATCHES, alone

    with Flood(turns_stack.base_url, a_key["key"]) as flood:
        wait_until(lambda: any(m.startswith(a_key["id"] + ":") for m in turns.holders()), timeout=60, interval=0.05,
                   message="A's first batch being made")
        wait_until(lambda: sum(m.startswith(a_key["id"] + ":") for m in turns.waiters()) >= 2, timeout=60,
                   interval=0.05, message="A's next batches waiting for their turn")
        flooded = _b_batches(turns_stack.base_url, b_key["key"])
        a_made_meanwhile = len(a.get("/v1/batches", params={"limit": 100}).json()["batches"])

    b_times = [elapsed for _, _, elapsed in flooded]
    print(f"\nB's small batch, answered in (s): alone {[round(t, 2) for _, _, t in alone]}, "
          f"under A's flood {[round(t, 2) for t in b_times]} (median {statistics.median(b_times):.2f}); "
          f"A's answers: {sorted({(s, c): flood.answers.count((s, c)) for s, c in flood.answers}.items())}, "
          f"A's batches made: {a_made_meanwhile}")
    assert [(status, code) for status, code, _ in flooded] == [(202, "")] * B_BATCHES, flooded  # never a 503
    assert max(b_times) < B_BOUND, b_times
    assert a_made_meanwhile >= 1  # A's flood was made too, in its turns
    # A's flood is refused only for its turns or for the items its limits allow a minute (10,000-item batches).
    assert {answer for answer in flood.answers if answer[0] != 202} <= {(503, "batches_busy"), (429, "rate_limited")}, \
        flood.answers
    assert all(code == "batches_busy" for status, code in flood.answers if status == 503), flood.answers
    listed = b.get("/v1/batches", params={"limit": 100}).json()["batches"]
    assert len(listed) == 2 * B_BATCHES and all(batch["key_id"] == b_key["id"] for batch in listed)
