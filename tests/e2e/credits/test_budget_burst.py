"""A burst of jobs under BFL_DAILY_CREDIT_LIMIT that must wait for the prices of the submissions under way goes on as
soon as they are known (issue 93's first fault): over real processes, 12 FLUX 3 videos posted at once while BFL
answers a submission after a second. Each waiting job was made due again by a web process before any send woke a
sweeper at rest; with nothing pushed, none of the 11 went for 20 s and more. Every write of an index the sweep reads now
wakes one when the index was empty (fluxhook/store/lua/sweep_index.lua)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import API
from credit_helpers import budget_stack
from devtools.processes import wait_until

DB = 13
LIMIT = 1500  # credits: 17 of these 85-credit videos a day, so all 12 may go
JOBS = 12
VIDEO = {"mode": "t2v", "duration": 5}


@pytest.fixture(scope="module")
def fronts(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-burst")),
                      DB, LIMIT) as (running, _):
        yield running


def test_a_burst_waiting_for_prices_goes_once_they_are_known(fronts, sim):
    sim.settings(submit_delay=1.0)
    api = API(fronts.base_url)
    with ThreadPoolExecutor(JOBS) as pool:
        answers = list(pool.map(lambda n: api.post("/v1/jobs", json={
            "model": "flux-3-video", "input": {"prompt": f"a fox {n}", **VIDEO}}), range(JOBS)))
    assert [a.status_code for a in answers] == [202] * JOBS, [a.text for a in answers if a.status_code != 202]
    ids = [a.json()["id"] for a in answers]

    def sent() -> int:
        return sum(api.get(f"/v1/jobs/{job_id}").json()["bfl_id"] is not None for job_id in ids)

    # The model's limit (5 at once) and BFL's second for each answer pace them; none waits on a wake that never comes.
    wait_until(lambda: sent() >= 6, timeout=15, interval=0.25, message="more of the burst sent once prices were known")
    wait_until(lambda: sent() == JOBS, timeout=60, interval=0.5, message="the whole burst sent")
