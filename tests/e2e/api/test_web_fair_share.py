"""A web process's capacity is divided between keys, not first come (docs/operating.md "No key can hold the web"): the
Procfile's processes, one web process with its 4 work permits. Key A floods reads from 16 connections and ignores
``429``; its refusals come from the process's memory, with no Redis step, and key B's reads are answered all the
while. The turns themselves: tests/unit/receiver/test_bulkheads.py."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from conftest import API
from helpers import stack_on_db
from key_helpers import make_key

DB = 1  # this module's stack
FLOODERS = 16
FLOOD_SECONDS = 4.0


@pytest.fixture(scope="module")
def stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("web-fair-share")), DB,
                     WEB_CONCURRENCY="1", READS_PER_MINUTE="60") as running:
        yield running


def _flood(base_url: str, token: str, until: float, answers: list[int]) -> None:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < until:
        answers.append(http.get(f"{base_url}/v1/jobs?limit=100", timeout=10).status_code)


def _b_reads(b: API, job_id: str, seconds: float) -> list[float]:
    took, ends = [], time.monotonic() + seconds
    while time.monotonic() < ends:
        started = time.monotonic()
        assert b.get(f"/v1/jobs/{job_id}", timeout=5).status_code == 200
        took.append(time.monotonic() - started)
        time.sleep(0.02)
    return took


def test_a_flood_ignoring_429_is_refused_without_redis_and_another_keys_reads_go_on(stack):
    admin = API(stack.base_url)
    key_a, a = make_key(admin, name="a-flood")
    # B reads its job every 20 ms throughout: far more than this stack's READS_PER_MINUTE, which holds A.
    _, b = make_key(admin, name="b-reader", reads_per_minute=1_000_000)
    b_job = b.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "B's job"}}).json()
    alone = _b_reads(b, b_job["id"], 2.0)

    # A spends its reads, so its next ones are refused; from here Redis must not hear of them.
    while a.get("/v1/jobs?limit=100").status_code != 429:
        pass
    watched = redis.Redis.from_url(stack.env["REDIS_URL"])
    monitor = watched.monitor()
    monitor.__enter__()
    seen: list[str] = []

    def listen():
        try:
            for command in monitor.listen():
                seen.append(command["command"])
        except (redis.ConnectionError, ValueError, OSError):
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    answers: list[int] = []
    until = time.monotonic() + FLOOD_SECONDS
    flooders = [threading.Thread(target=_flood, args=(stack.base_url, key_a["key"], until, answers))
                for _ in range(FLOODERS)]
    for flooder in flooders:
        flooder.start()
    attacked = _b_reads(b, b_job["id"], FLOOD_SECONDS - 0.5)
    for flooder in flooders:
        flooder.join(timeout=15)
    monitor.connection.disconnect()

    refused = answers.count(429)
    # Each refusal in force is answered after a second (receiver/bulkheads.py, TARPIT_SECONDS): A's 16 connections
    # send about 16 requests a second, not hundreds.
    assert FLOODERS <= refused <= FLOODERS * (FLOOD_SECONDS + 2) and set(answers) <= {200, 429}, answers
    # The refusals in force were answered from memory: the read limit's script never ran for A's key meanwhile
    # (a refusal that lapsed within the flood's seconds costs its one step, at most a few).
    a_steps = [c for c in seen if key_a["id"] in c and "EVALSHA" in c.upper()]
    assert len(a_steps) <= 1 + int(FLOOD_SECONDS), a_steps[:5]
    print(f"A: {refused} refused, {answers.count(200)} read, {len(a_steps)} Redis steps; B's read p50 alone "
          f"{statistics.median(alone) * 1000:.1f} ms, under A's flood {statistics.median(attacked) * 1000:.1f} ms")
    assert len(attacked) >= 10
