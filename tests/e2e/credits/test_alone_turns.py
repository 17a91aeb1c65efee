"""Going alone is fair: jobs that must go alone take turns between owners, so one key's queue of them
delays another key's job by at most one such send, however many it queues. Against the Procfile's processes,
with BFL answering each submission after about a second.

The defect this stops: key A queued 60 jobs of a model the catalog cannot bound; key B's one boundable job then
waited ``budget_settling`` behind every one of them (181 s, about 3 s per job of A's ahead of it), held by the
record each of A's waiting jobs left in the service's limit. The rule in Redis: tests/unit/credits/
test_budget_alone_turns.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import API
from credit_helpers import budget_stack, priced_within_catalog, start_a_fresh_day
from devtools.processes import wait_until
from fluxhook.core.config import Config
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from key_helpers import make_key

DB = 7
LIMIT = 40  # credits
BFL_ANSWERS_AFTER = 1.0
QUEUED_BY_A = 60
UNBOUNDABLE = "flux-unpriced-a"  # tests/models.toml: no price, so under a limit each request goes alone
BOUNDABLE = {"prompt": "B's one job", "width": 1000, "height": 1000}  # flux-2-pro: bound 3 credits, charged 3
# Once B's job is sent, BFL charges A's jobs this much each: the limit is reached within the test.
A_PRICE = {"cost": 4.0, "input_mp": 0.0, "output_mp": 1.0}
DEAREST = 4
SENT = ("submitted", "ready", "stored")


@pytest.fixture(scope="module")
def stack(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("alone-turns")),
                      DB, LIMIT) as (running, _):
        yield running


@pytest.fixture()
def day(stack, sim):
    """A fresh day, flux-2-pro already priced by BFL within its catalog entry (so it is boundable), BFL answering
    after a second."""
    admin = API(stack.base_url)
    start_a_fresh_day(stack, admin)
    svc = build_services(Config.from_env(stack.env))
    priced_within_catalog(svc)
    sim.settings(submit_delay=BFL_ANSWERS_AFTER)
    return admin, svc


def _post(api: API, model: str, body: dict) -> str:
    response = api.post("/v1/jobs", json={"model": model, "input": body})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _alone_out(svc) -> bool:
    return any(value.endswith(b" alone") for value in svc.redis.hvals(KEYS.budget_held))


def test_one_keys_queue_of_jobs_that_go_alone_holds_another_keys_job_for_at_most_one_send(day, sim):
    admin, svc = day
    _, key_a = make_key(admin)
    _, key_b = make_key(admin)
    with ThreadPoolExecutor(8) as pool:  # A's queue, made quickly (each request that goes alone takes BFL's second)
        queued = list(pool.map(lambda n: _post(key_a, UNBOUNDABLE, {"prompt": f"A's {n}"}), range(QUEUED_BY_A)))

    def sent_of_a() -> int:
        return sum(key_a.job(job_id)["status"] in SENT for job_id in queued)

    # A's jobs go alone, one after another; let two go, so that the rest wait with their records in the limit.
    wait_until(lambda: sent_of_a() >= 2, timeout=30, interval=0.2, message="A's first jobs to go alone")
    # The hardest moment for B: one of A's jobs has just been sent alone, so B's job must wait for its price.
    wait_until(lambda: _alone_out(svc), timeout=10, interval=0.01, message="one of A's jobs to be out alone")
    before = sent_of_a()
    started = time.time()
    mine = _post(key_b, "flux-2-pro", BOUNDABLE)
    wait_until(lambda: key_b.job(mine)["status"] in SENT, timeout=60, interval=0.05,
               message="B's job to reach BFL")
    # B waited for one send of A's at most: the one out alone when B came. Counted by when BFL accepted each job
    # rather than timed, which a loaded machine would stretch; the defect had B wait for all 60.
    accepted_at = {job_id: svc.store.jobs.get(job_id).submitted_at for job_id in queued}
    b_accepted_at = svc.store.jobs.get(mine).submitted_at
    ahead = [job_id for job_id, at in accepted_at.items() if at is not None and started < at < b_accepted_at]
    assert len(ahead) <= 1, (len(ahead), b_accepted_at - started)
    sim.settings(cost_fields=A_PRICE)
    # A's jobs are not starved: they go on after B's, until the limit stops them.
    wait_until(lambda: sent_of_a() >= before + 3, timeout=30, interval=0.2, message="A's jobs to go on after B's")
    # The limit holds: once its credits are spent, nothing more goes, and the day ends at most one job's price over.
    wait_until(lambda: admin.get("/v1/usage").json()["spent_today"] >= LIMIT - 1, timeout=60, interval=0.5,
               message="the day's credits to be spent")
    wait_until(lambda: svc.store.usage.reserved(time.time()) == 0, timeout=30, interval=0.2,
               message="the last send to settle")
    assert admin.get("/v1/usage").json()["spent_today"] <= LIMIT + DEAREST
    assert sim.stats()["submitted"] == sent_of_a() + 1
