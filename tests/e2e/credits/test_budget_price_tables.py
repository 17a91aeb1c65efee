"""The daily credit limit under concurrency for the price rules that depend on request fields: 40 FLUX 3 Video
submissions at once of mixed mode, draft, duration and resolution (priced per output second), and 40 FLUX 3
Image of mixed resolution class, over two web processes, end at most one job's price above
BFL_DAILY_CREDIT_LIMIT; every job is bounded (none goes alone for want of a price)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conftest import API
from credit_helpers import budget_stack, start_a_fresh_day
from devtools.processes import wait_until
from fluxhook.core.catalog import SHIPPED_CATALOG
from fluxhook.credits.budget import bound, request_size
from fluxhook.store.usage import UsageStore
from simulator import pricing

DB = 9
# One limit for both mixes: the 40 images together cost more than it, so it binds for each.
LIMIT = 500
MODES = ("t2v", "i2v", "v2v", "draft_enhance")
RESOLUTIONS = ("hd", "fhd", "qhd", "uhd", None)
CLASSES = ("768sq", "1k", "1.5k", "2k", "4k", None)


def video_body(n: int) -> dict:
    """The n-th of a mix: every mode, drafts and full renders, 5 to 20 s, each resolution or none."""
    mode = MODES[n % len(MODES)]
    body: dict = {"mode": mode, "prompt": f"video {n}", "duration": 5 + (n * 7) % 16}
    if RESOLUTIONS[n % len(RESOLUTIONS)] is not None:
        body["resolution"] = RESOLUTIONS[n % len(RESOLUTIONS)]
    if mode == "i2v":
        body["keyframes"] = ["https://e.example/a.png"]
    elif mode == "v2v":
        body["start_video"] = "https://e.example/a.mp4"
    elif mode == "draft_enhance":
        body["draft_cache"] = "ZHJhZnQ="
        del body["duration"]  # the draft's own length
    if mode in ("t2v", "i2v", "v2v") and n % 3 == 0:
        body["draft"] = True
    return body


def image_body(n: int) -> dict:
    body: dict = {"prompt": f"image {n}"}
    if CLASSES[n % len(CLASSES)] is not None:
        body["resolution"] = CLASSES[n % len(CLASSES)]
    if n % 4 == 0:
        body["images"] = ["https://e.example/a.png", "https://e.example/b.png"]
    return body


@pytest.fixture(scope="module")
def fronts(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-tables")),
                      DB, LIMIT) as (running, second):
        yield running, API(running.base_url), second


def _at_once(fronts, sim, model: str, bodies: list[dict]) -> None:
    running, first, second = fronts
    limit = LIMIT
    start_a_fresh_day(running, first)
    held = UsageStore(redis.Redis.from_url(running.env["REDIS_URL"]))
    stated = [pricing.price(model, body)["cost"] for body in bodies]
    entry = SHIPPED_CATALOG.get(model)
    # The catalog bounds every one of them, never below what BFL states for it.
    assert all(bound(entry, request_size(entry, body)) >= cost * 1_000_000 for body, cost in zip(bodies, stated, strict=True))
    assert sum(stated) > limit

    def post(n: int):
        return (first, second)[n % 2].post("/v1/jobs", json={"model": model, "input": bodies[n]})

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(post, range(len(bodies))))
    assert {r.status_code for r in answers} <= {202, 402}, [r.text for r in answers if r.status_code not in (202, 402)]
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in answers if r.status_code == 402)
    assert any(r.status_code == 202 for r in answers)

    def settled() -> bool:
        spent = first.get("/v1/usage").json()["spent_today"]
        return held.reserved(time.time()) == 0 and spent >= limit

    try:
        wait_until(settled, timeout=120, interval=0.2)
    finally:
        held.connection.close()
    jobs = first.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
    sent = [job for job in jobs if job["bfl_id"]]
    spent = first.get("/v1/usage").json()["spent_today"]
    print(f"{model} limit {limit}: {len(sent)} sent, spent {spent}, dearest {max(stated)}")
    # What was sent, beside what was spent: too many sends, or a price counted twice.
    costs = sorted(job["cost"]["credits"] for job in sent)
    assert limit <= spent <= limit + max(stated), (spent, sum(costs), costs, sim.stats()["submitted"])
    assert spent == pytest.approx(sum(job["cost"]["credits"] for job in sent))
    assert sim.stats()["submitted"] == len(sent)
    assert all(job["status"] == "queued" for job in jobs if not job["bfl_id"])


@pytest.mark.parametrize("model, make", [("flux-3-video", video_body), ("flux-3-image", image_body)])
def test_forty_mixed_submissions_at_once_end_at_most_one_jobs_price_above_the_limit(fronts, sim, model, make):
    _at_once(fronts, sim, model, [make(n) for n in range(40)])
