"""The attacks on the daily limits that the model catalog stops (docs/callbacks.md, docs/models.md), against the
Procfile's processes and a second web process, with BFL answering each submission after about a second.

Before the catalog, fluxhook learned each model's bound from the gap between what it measured and what BFL
charged, so a caller could teach it a low one: sides sent as 4096.0 (measured as 4096, priced by BFL's
reading), a lone ``mask`` (counted as an input image BFL reads none of), or small images first (each request
counted as a whole megapixel). Then 40 at once all passed the check: a limit of 30 ended at 405, 138, 88.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conftest import API
from credit_helpers import budget_stack, start_a_fresh_day
from devtools.processes import wait_until
from fluxhook.store.usage import UsageStore
from key_helpers import make_key
from simulator import pricing

DB = 9
LIMIT = 30
# About BFL's own latency: checks that pass at once are tested with answers that do not.
BFL_ANSWERS_AFTER = 1.0
EIGHT_INPUTS = {"input_image": "https://example.invalid/1.png",
                **{f"input_image_{n}": f"https://example.invalid/{n}.png" for n in range(2, 9)}}


@pytest.fixture(scope="module")
def fronts(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("catalog-attacks")),
                      DB, LIMIT) as (running, second):
        yield running, API(running.base_url), second


@pytest.fixture()
def day(fronts, sim):
    """A fresh day (no spend, no reservation, no job), and BFL answering after a second."""
    running, first, _ = fronts
    start_a_fresh_day(running, first)
    sim.settings(submit_delay=BFL_ANSWERS_AFTER)
    return fronts


def _post(api: API, model: str, body: dict):
    return api.post("/v1/jobs", json={"model": model, "input": body})


def _settled_spend(fronts, viewer: API, limit: float, dearest: float) -> float:
    """Today's spend once nothing is reserved any more and nothing more can be sent."""
    running, _, _ = fronts
    held = UsageStore(redis.Redis.from_url(running.env["REDIS_URL"]))

    def settled() -> bool:
        return held.reserved(time.time()) == 0 and viewer.get("/v1/usage").json()["spent_today"] > limit - dearest

    try:
        wait_until(settled, timeout=120, interval=0.25, message="the submissions to settle")
    finally:
        held.connection.close()
    return viewer.get("/v1/usage").json()["spent_today"]


def _forty_at_once(fronts, model: str, body: dict, token: str | None = None) -> list:
    _, first, second = fronts
    clients = [API(api.base_url, token=token) if token else api for api in (first, second)]
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda n: _post(clients[n % 2], model, dict(body, prompt=f"at once {n}")), range(40)))
    assert {r.status_code for r in answers} <= {202, 402}, [r.text for r in answers if r.status_code not in (202, 402)]
    return answers


def test_sides_sent_as_floats_teach_nothing(day, sim):
    # 4096.0 is 4096 to BFL: the catalog reads it so, clamped to the most flux-2-max makes.
    _, first, _ = day
    model, large = "flux-2-max", {"width": 4096.0, "height": 4096.0}
    assert _post(first, model, dict(large, prompt="the first, priced")).status_code == 202
    _forty_at_once(day, model, {"width": 4096, "height": 4096})
    dearest = pricing.price(model, large)["cost"]
    spent = _settled_spend(day, first, LIMIT, dearest)
    assert LIMIT - dearest < spent <= LIMIT + dearest, spent
    assert sim.stats()["submitted"] <= LIMIT // dearest + 2


def test_a_mask_and_eight_input_images_stay_within_a_keys_daily_credits(day, sim):
    # A mask is no input image to FLUX.2; eight input images each count at the most BFL reads from one.
    _, first, _ = day
    created, key = make_key(first, daily_credits=LIMIT)
    model = "flux-2-pro"
    assert _post(key, model, {"prompt": "a mask only", "mask": "https://example.invalid/m.png"}).status_code == 202
    _forty_at_once(day, model, EIGHT_INPUTS, token=created["key"])
    dearest = pricing.price(model, EIGHT_INPUTS)["cost"]
    spent = _settled_spend(day, key, LIMIT, dearest)
    assert LIMIT - dearest < spent <= LIMIT + dearest, spent


def test_small_images_priced_first_do_not_lower_the_bound_of_large_ones(day, sim):
    _, first, _ = day
    model = "flux-2-pro"
    for n in range(3):
        assert _post(first, model, {"prompt": f"small {n}", "width": 512, "height": 512}).status_code == 202
    large = {"width": 2048, "height": 2048}
    _forty_at_once(day, model, large)
    dearest = pricing.price(model, large)["cost"]
    spent = _settled_spend(day, first, LIMIT, dearest)
    assert LIMIT - dearest < spent <= LIMIT + dearest, spent
