"""Variants asked for by the hundred from one key while another key reads (docs/api.md "Bounded", docs/operating.md "No
key can hold the web"): the Procfile's processes, one web process with its 4 work permits and its 2 variant makers. Key
A asks for hundreds of new variants of its photo-like images from 48 connections at once; key B meanwhile reads its job
and its image, and asks for a variant of its own. B's reads stay within docs/operating.md's bounds of alone (p50 1.5x,
p90 3x, with a few ms for a shared host), B's variant is made in its turn, not behind A's backlog, A's requests past its
places are answered 503 with Retry-After at once, and the web process's memory stays flat while A's variants are
made."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from itertools import product
from pathlib import Path

import pytest
import requests

from conftest import API
from helpers import stack_on_db
from key_helpers import make_key

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)
A_JOBS = 6
A_CONNECTIONS = 48
READS = 60


@pytest.fixture(scope="module")
def stack(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("variant-flood")), DB,
                     WEB_CONCURRENCY="1") as running:
        yield running


@pytest.fixture(scope="module")
def keys(stack, simulator):
    """Key A's photo-like 1024x1024 JPEGs and key B's one, stored."""
    simulator.settings(scene_images=True, image_format="jpeg")
    try:
        admin = API(stack.base_url)
        _, a = make_key(admin)
        _, b = make_key(admin)
        jobs_a = [_stored(a, f"a hillside {n}") for n in range(A_JOBS)]
        job_b = _stored(b, "a harbour")
    finally:
        simulator.reset()
    # The web process's maker processes started (once, on its first variant), as on a service that has made any.
    assert b.get(f"/v1/jobs/{job_b['id']}/image", params={"w": 100, "format": "jpeg"}).status_code == 200
    return a, jobs_a, b, job_b


def _stored(api: API, prompt: str) -> dict:
    answer = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": 1024,
                                                                         "height": 1024}})
    assert answer.status_code == 202, answer.text
    job = api.wait_for(answer.json()["id"], timeout=60)
    assert job["status"] == "stored", job
    return job


def _rss_kib(pid: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _children(pid: str) -> list[str]:
    """The web process ``pid``'s variant makers: the processes it started, but multiprocessing's resource tracker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if (stat.read_text().rsplit(")", 1)[1].split()[1] == pid
                    and b"resource_tracker" not in (stat.parent / "cmdline").read_bytes()):
                found.append(stat.parent.name)
        except (OSError, IndexError):
            continue
    return found


def _makers_rss_kib(pid: str) -> int:
    total = 0
    for child in _children(pid):
        try:
            total += _rss_kib(child)
        except OSError:
            continue  # a maker replaced meanwhile
    return total


def _b_reads(b: API, job_b: dict) -> list[float]:
    took = []
    for n in range(READS):
        path = f"/v1/jobs/{job_b['id']}" if n % 2 else f"/v1/jobs/{job_b['id']}/image"
        started = time.perf_counter()
        answer = b.get(path)
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return took


def _p90(values: list[float]) -> float:
    # Of READS reads, a p99 would be the second slowest: one stall of a host shared with the suite's other stacks (98 ms
    # against 11 alone in a CI run), not the flood's. Reads held behind A's flood would be slow by the dozen.
    return sorted(values)[max(0, round(len(values) * 0.9) - 1)]


# Key A's connections, in a process of their own (so that their threads do not slow this process's own reads of
# B's): each asks for new variants of A's jobs one after another, for FLOOD_SECONDS, ignoring Retry-After, then the
# process prints each answer's status and every Retry-After it was given.
FLOOD_SECONDS = 4.0
FLOODER_NICENESS = 15
_FLOODER = """
import json, sys, threading, time, requests
base_url, token, asks, connections, seconds = json.loads(sys.argv[1])
asks, lock, statuses, retry_after = iter(asks), threading.Lock(), [], set()
until = time.monotonic() + seconds
def run():
    http = requests.Session()
    http.headers["Authorization"] = token
    while time.monotonic() < until:
        with lock:
            ask = next(asks, None)
        if ask is None:
            return
        job_id, width, fmt, quality = ask
        answer = http.get(f"{base_url}/v1/jobs/{job_id}/image", params={"w": width, "format": fmt, "q": quality},
                          timeout=60)
        with lock:
            statuses.append(answer.status_code)
            if answer.status_code == 503:
                retry_after.add(answer.headers.get("Retry-After", "") + " " + answer.json()["error"]["code"])
threads = [threading.Thread(target=run) for _ in range(connections)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"statuses": statuses, "retry_after": sorted(retry_after)}))
"""


def _flood(a: API, jobs: list[dict]) -> subprocess.Popen:
    widths = (64, 128, 256, 384, 512, 640, 768, 1024)
    asks = [(job["id"], w, fmt, q) for job, (w, fmt, q) in product(jobs, product(widths, ("webp", "jpeg", "png"),
                                                                                  (50, 75, 90)))]
    argument = json.dumps([a.base_url, a.http.headers["Authorization"], asks, A_CONNECTIONS, FLOOD_SECONDS])
    # At a lower CPU priority: on this host of two cores the flood's own client would otherwise take a core from the
    # web process under test, which a client elsewhere never does.
    return subprocess.Popen([sys.executable, "-c", _FLOODER, argument], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.nice(FLOODER_NICENESS))


def test_one_keys_flood_of_new_variants_leaves_another_keys_reads_and_variants_alone(stack, keys):
    a, jobs_a, b, job_b = keys
    _b_reads(b, job_b)  # warm: connections, the key's record cached
    alone = _b_reads(b, job_b)

    flooder = _flood(a, jobs_a)
    time.sleep(0.5)  # A's connections at work: the makers busy, A's places in the room taken
    during = _b_reads(b, job_b)
    started = time.perf_counter()
    own = b.get(f"/v1/jobs/{job_b['id']}/image", params={"w": 640, "format": "webp"}, timeout=30)
    b_variant = time.perf_counter() - started
    out, _ = flooder.communicate(timeout=FLOOD_SECONDS + 60)
    flood = json.loads(out)
    statuses = flood["statuses"]

    print(f"A: {statuses.count(200)} variants made, {statuses.count(503)} refused; B's read p50 alone "
          f"{statistics.median(alone) * 1000:.1f} ms, during A's flood {statistics.median(during) * 1000:.1f} ms; "
          f"p90 {_p90(alone) * 1000:.1f} / {_p90(during) * 1000:.1f} ms; B's variant in {b_variant * 1000:.0f} ms")
    assert own.status_code == 200 and own.headers["Content-Type"] == "image/webp"
    assert b_variant < 2.0, b_variant  # its turn, not a place behind A's hundreds
    # A's variants were being made meanwhile: the flood's 432 asks are spent in its first second or so, most of them
    # refused from memory, so how many land while a place is free varies with timing (13 on 06147f0, 8-9 here).
    assert statuses.count(200) >= 5, statuses.count(200)
    assert set(statuses) <= {200, 503}, set(statuses)
    # Past A's places: refused at once, told when to come back (a refusal repeated from memory counts its 2 s down).
    assert flood["retry_after"] and set(flood["retry_after"]) <= {"2 variants_busy", "1 variants_busy"}
    p50_alone, p50_during = statistics.median(alone), statistics.median(during)
    p90_alone, p90_during = _p90(alone), _p90(during)
    # docs/operating.md's bounds, with 5 ms (p50) and 60 ms (p90) for a host whose two cores other processes share
    # (the suite's other stacks, other test runs: a few ms of scheduling on a loaded host is not the flood's).
    assert p50_during <= 1.5 * p50_alone + 0.005, (p50_alone, p50_during)
    assert p90_during <= 3 * p90_alone + 0.060, (p90_alone, p90_during)


def _asked_until_made(http: requests.Session, url: str, params: dict, tries: int = 10) -> requests.Response:
    """GET ``url`` as a client does: a 503 ``variants_busy`` is asked again after its Retry-After (the flood's last
    requests, still being made when its client stopped, may hold A's places a moment)."""
    for _ in range(tries - 1):
        answer = http.get(url, params=params, timeout=60)
        if answer.status_code != 503:
            return answer
        time.sleep(float(answer.headers["Retry-After"]))
    return http.get(url, params=params, timeout=60)


def test_the_web_process_memory_stays_flat_while_100_new_variants_are_made(stack, keys):
    a, jobs_a, _, _ = keys
    [pid] = stack.web_workers()
    http = requests.Session()
    http.headers["Authorization"] = a.http.headers["Authorization"]
    asks = [(job["id"], w, fmt) for job, w, fmt in product(jobs_a, (96, 200, 300, 450, 600, 700, 900),
                                                              ("avif", "webp", "jpeg"))]

    def make(batch):
        for job_id, width, fmt in batch:
            answer = _asked_until_made(http, f"{a.base_url}/v1/jobs/{job_id}/image",
                                       {"w": width, "format": fmt, "q": 90})
            assert answer.status_code == 200, answer.text

    make(asks[:10])  # warm: each encoder loaded once
    before, makers_before = _rss_kib(pid), _makers_rss_kib(pid)
    peak, makers_peak = before, makers_before
    sampling = threading.Event()

    def sample():
        nonlocal peak, makers_peak
        while not sampling.is_set():
            peak, makers_peak = max(peak, _rss_kib(pid)), max(makers_peak, _makers_rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    make(asks[10:110])
    sampling.set()
    sampler.join()
    after, makers_after = _rss_kib(pid), _makers_rss_kib(pid)

    print(f"web RSS: {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB, {after / 1024:.1f} MiB after 100 new "
          f"variants; its {len(_children(pid))} makers together {makers_before / 1024:.1f}, peak "
          f"{makers_peak / 1024:.1f}, {makers_after / 1024:.1f} MiB")
    assert len(asks[10:110]) == 100
    assert makers_before > 0  # the makers were measured
    # KiB: the web process holds a few originals and variants at a time, its makers a few decoded images each; never
    # 100 variants' worth.
    assert peak - before < 16 * 1024 and after - before < 8 * 1024, (before, peak, after)
    assert makers_peak - makers_before < 64 * 1024 and makers_after - makers_before < 32 * 1024, (
        makers_before, makers_peak, makers_after)
