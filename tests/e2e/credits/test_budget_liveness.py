"""A job holding the daily budget's only reservation "sent alone" reaches BFL as soon as a slot frees, however
many jobs that must wait for it are ahead of it in line (docs/callbacks.md's limits, with few BFL slots).

The starvation this stops: with BFL_MAX_ACTIVE=2, the jobs waiting for the budget came back in line every
2 s, ahead of the job sent alone (they were created first), took the free slots, were refused by the budget,
gave the slots back, and came back again: the job holding the reservation never got a slot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from conftest import API
from credit_helpers import budget_stack
from devtools.processes import wait_until
from fluxhook.credits import accounting
from fluxhook.store.keys import KEYS
from key_helpers import make_key
from simulator import pricing

DB = 7
LIMIT = 100
KEY_LIMIT = 60
PRICED = "flux-2-pro"  # 3 credits a task here
# Models the catalog cannot bound (tests/models.toml): their requests go alone.
UNPRICED, UNPRICED_B = "flux-unpriced-a", "flux-unpriced-b"
WAITING = 8  # more than the two slots can cycle through between two sweeps
SENT = ("submitted", "ready", "stored")
DEAREST = max(pricing.price(model, {})["cost"] for model in (PRICED, UNPRICED, UNPRICED_B))


@pytest.fixture(scope="module")
def few_slots(redis_server, simulator, _spies, tmp_path_factory):
    with budget_stack(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("budget-liveness")),
                      DB, LIMIT, BFL_MAX_ACTIVE="2") as (running, _):
        yield running


@pytest.fixture()
def fresh_day(few_slots):
    """The admin's client on a fresh day: no spend, no reservation, no model over its catalog price, no slot held."""
    connection = redis.Redis.from_url(few_slots.env["REDIS_URL"])
    wait_until(lambda: not any(connection.zcard(k) for k in connection.scan_iter(KEYS.slots("*"))), timeout=30,
               interval=0.1, message="an earlier test's tasks to finish")
    connection.delete(KEYS.usage(accounting.utc_day(time.time())), KEYS.budget_held, KEYS.prices_over_catalog,
                      *connection.scan_iter(KEYS.key_budget_held("*")))
    connection.close()
    return API(few_slots.base_url)


def _post(api: API, model: str, prompt: str) -> str:
    response = api.post("/v1/jobs", json={"model": model, "input": {"prompt": prompt}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _sent(api: API, job_id: str) -> bool:
    return api.job(job_id)["status"] in SENT


@pytest.mark.parametrize("limit", ["BFL_DAILY_CREDIT_LIMIT", "daily_credits"])
def test_the_job_sent_alone_gets_the_next_free_slot_before_jobs_waiting_for_it(fresh_day, sim, limit):
    admin, api, most = fresh_day, fresh_day, LIMIT
    if limit == "daily_credits":  # an app key's own limit, inside the account's
        most = KEY_LIMIT
        _, api = make_key(admin, daily_credits=KEY_LIMIT)
    sim.settings(task_delay=None)  # tasks run until the test completes them: it decides when slots free
    first = _post(api, PRICED, "holds a slot")  # its catalog bound, sent at once
    second = _post(api, PRICED, "holds the other slot")
    assert _sent(api, first) and _sent(api, second)
    # Both slots are held. An unpriced model goes alone and waits in line; the jobs after it wait for it.
    alone_before = _post(api, UNPRICED, "alone, in line")
    waiting = [_post(api, PRICED, f"waits {n}") for n in range(WAITING)]
    assert api.job(alone_before)["status"] == "queued"
    first_task = api.job(first)["bfl_id"]
    sim.complete(first_task)
    wait_until(lambda: _sent(api, alone_before), timeout=15, interval=0.1, message="the first job alone to be sent")
    # Now nothing is reserved and both slots are held; the waiting jobs are ahead of any new job.
    alone = _post(api, UNPRICED_B, "alone, behind the waiting jobs")  # unpriced: holds all that is left
    assert api.job(alone)["status"] == "queued"
    sim.settings(task_delay=0.2)
    for job_id in (second, alone_before):
        sim.complete(api.job(job_id)["bfl_id"])
    # Two slots free: the job holding the reservation must get one, whatever the others ahead of it do.
    wait_until(lambda: _sent(api, alone), timeout=12, interval=0.1, message="the job holding the reservation to be sent")
    # It has settled: the others proceed in turn.
    wait_until(lambda: all(_sent(api, job_id) for job_id in waiting), timeout=30, interval=0.2,
               message="the jobs that waited to be sent")
    spent = admin.get("/v1/usage").json()["spent_today"]
    assert spent <= most + DEAREST, spent
    assert sim.stats()["submitted"] == 4 + WAITING


def test_a_stream_of_cheap_jobs_cannot_hold_back_a_job_that_must_go_alone(few_slots, fresh_day, sim):
    """Issue 33 point 4: a cheap job arrives whenever one is sent, so reservations are always live in line;
    before, the job that must go alone waited behind them for as long as the stream lasted. Now the cheap jobs
    that arrive after it wait behind it, the ones ahead of it settle, and it goes."""
    api = fresh_day
    connection = redis.Redis.from_url(few_slots.env["REDIS_URL"])
    sim.settings(task_delay=1.0)  # two slots: two tasks a second
    stream: list[str] = []

    def three_wait_in_line() -> bool:
        stream.append(_post(api, PRICED, f"ahead {len(stream)}"))
        return sum(api.job(job_id)["status"] == "queued" for job_id in stream) >= 3

    # A backlog of cheap jobs waiting in line, each holding its reservation.
    wait_until(three_wait_in_line, timeout=30, interval=0, message="cheap jobs waiting in line")
    alone = _post(api, UNPRICED, "must go alone")  # no bound: it goes alone
    ahead, behind = len(stream), []

    def one_arrives_as_one_is_sent() -> bool:
        if _sent(api, alone):
            return True
        while sum(_sent(api, job_id) for job_id in stream) > len(behind):
            behind.append(_post(api, PRICED, f"behind {len(behind)}"))
            stream.append(behind[-1])
        return False

    wait_until(one_arrives_as_one_is_sent, timeout=40, interval=0.1, message="the job that must go alone to be sent")
    assert len(behind) >= 2  # the stream went on while it waited
    # The cheap jobs that came after it went after it.
    wait_until(lambda: all(_sent(api, job_id) for job_id in stream), timeout=40, interval=0.2,
               message="the cheap jobs to be sent")

    def submitted_at(job_id: str) -> float:
        return float(connection.hget(KEYS.job(job_id), "submitted_at"))

    assert all(submitted_at(job_id) > submitted_at(alone) for job_id in behind), (ahead, len(behind))
    connection.close()
    assert api.get("/v1/usage").json()["spent_today"] <= LIMIT + DEAREST
    assert sim.stats()["submitted"] == len(stream) + 1
