"""A web process's memory while large batch bodies arrive, and after (docs/operating.md "What a key holds is bounded", issue 83
point 4): four keys' bodies at once take the process to a height that does not grow with their size (each is parsed
as it is read and its items spooled to a file as they come, never held: four 64 MiB bodies took it from 61 MB to
415 MB while their items were kept), and once they are answered the process gives that memory back (it kept 2.4 GB
after four 250 MB bodies). The Procfile's processes of this module's own, with one web worker, whose resident memory
is read from /proc."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests

from conftest import API
from devtools.processes import wait_until
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)
SMALL = 16 * 2**20
LARGEST = 64 * 2**20 - 2**20  # MAX_BATCH_BYTES' default, less room for the body's own fields
KEYS = 4
PROMPT = 25_000  # as the issue's: each input past the size kept in a job's record, so it goes to storage
# What four bodies at once may add to the process, of either size: their items spooled, a trip of them at a time.
GROWTH_MB = 120


@pytest.fixture(scope="module")
def one_web(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("batch-memory")),
                     DB, WEB_CONCURRENCY="1", MAX_QUEUED_PER_KEY="1000000") as running:
        yield running


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _body(tag: str, size: int) -> bytes:
    item_bytes = len(json.dumps({"input": {"prompt": "x" * PROMPT}})) + 20
    items = [{"input": {"prompt": f"[pending] {tag} {i} " + "x" * PROMPT}} for i in range(size // item_bytes)]
    return json.dumps({"model": "flux-2-pro", "items": items}).encode()


def _round(base_url: str, keys: list[str], bodies: list[bytes], pid: int) -> float:
    """Every key's body at once, each answered 202; the process's highest resident memory meanwhile (MB)."""
    samples, answers, done = [_rss_mb(pid)], [], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append(_rss_mb(pid))

    def post(n: int) -> None:
        answers.append(requests.post(f"{base_url}/v1/batches", data=bodies[n], timeout=300, headers={
            "Authorization": f"Bearer {keys[n]}", "Content-Type": "application/json"}))

    sampler = threading.Thread(target=sample)
    sampler.start()
    posts = [threading.Thread(target=post, args=(n,)) for n in range(len(keys))]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join(timeout=300)
    done.set()
    sampler.join()
    assert [answer.status_code for answer in answers] == [202] * len(keys), [answer.text[:200] for answer in answers]
    assert len({answer.json()["key_id"] for answer in answers}) == len(keys)  # each key's own batch
    return max(samples)


def test_four_bodies_at_once_take_as_much_memory_at_the_largest_size_as_at_a_quarter_and_give_it_back(one_web):
    admin = API(one_web.base_url)
    keys = [make_key(admin)[0]["key"] for _ in range(KEYS)]
    pid = int(one_web.web_workers()[0])
    started = _rss_mb(pid)
    # A first round, then what the process keeps of it (its threads' allocator arenas, its connections: not the items).
    small = [_body(f"key {n}'s", SMALL) for n in range(KEYS)]
    _round(one_web.base_url, keys, small, pid)
    before = _settled(pid, lambda rss: rss - started < GROWTH_MB, "the first round's memory given back")
    small_peak = _round(one_web.base_url, keys, small, pid)
    del small
    between = _settled(pid, lambda rss: rss - before < 0.3 * max(small_peak - before, 30),
                       f"the second round's memory given back (before {before:.0f} MB, peak {small_peak:.0f} MB)")
    largest = [_body(f"key {n}'s", LARGEST) for n in range(KEYS)]
    peak = _round(one_web.base_url, keys, largest, pid)
    after = _settled(pid, lambda rss: rss - between < 0.3 * max(peak - between, 30),
                     f"the largest round's memory given back (before {between:.0f} MB, peak {peak:.0f} MB)")
    print(f"\nRSS of the web worker, {KEYS} bodies at once: at start {started:.0f} MB, then {before:.0f} MB; "
          f"{SMALL >> 20} MiB each: peak {small_peak:.0f} MB, after {between:.0f} MB; {LARGEST >> 20} MiB each: peak "
          f"{peak:.0f} MB, after {after:.0f} MB")
    # Four times the bytes, not four times the memory: what the process holds does not grow with the bodies.
    assert peak - between < max(1.5 * (small_peak - before), 40), (before, small_peak, between, peak)
    assert peak - between < GROWTH_MB and small_peak - before < GROWTH_MB, (before, small_peak, between, peak)


def _settled(pid: int, given_back, message: str) -> float:
    """The process's resident memory once ``given_back(rss)`` holds (its answers sent, its items let go)."""
    return wait_until(lambda: (lambda rss: rss if given_back(rss) else None)(_rss_mb(pid)), timeout=10, interval=0.5,
                      message=message)
