"""A send whose outcome is unknown is a job, end to end: the Procfile's web and worker processes, Redis and
the simulator answering a submission only after fluxhook's read timeout (``bfl_limits.TIMEOUT``, 20 s) has given up
on it, while BFL, like the simulator, keeps the task. The request that sent it answers 202 with a ``submitted`` job
(200 in BFL's shape on the drop-in ``POST /v1/{model}``), a retry with its ``Idempotency-Key`` gets that job, BFL
makes one task for it, the key's ``spent_today`` counts the request's bound until BFL's result states the price, and
BFL's callback to the job's own URL names the task the job then follows to ``stored``. Another key's job goes
through meanwhile, at BFL's usual second, and its spend is its own."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import API
from fluxhook.core.bfl_limits import TIMEOUT
from fluxhook.core.catalog import SHIPPED_CATALOG
from fluxhook.credits import budget
from fluxhook.credits.accounting import from_micro
from key_helpers import make_key

MODEL = "flux-2-pro"
INPUT = {"prompt": "a fox whose answer is late", "width": 1024, "height": 1024}
# BFL takes the task this long after it is sent: past fluxhook's read timeout, within the simulator's 30 s.
LATE = TIMEOUT[1] + 6
# The price BFL's result states (the simulator sends these fields with each Ready it makes).
STATED = 1.5
REPLAYED = "Idempotent-Replayed"


def _bound() -> float:
    """The catalog's bound of the request's price, in credits."""
    model = SHIPPED_CATALOG.get(MODEL)
    return from_micro(budget.bound(model, budget.request_size(model, INPUT)))


def _spent_today(app: API) -> float:
    usage = app.get("/v1/usage")
    assert usage.status_code == 200, usage.text
    return usage.json()["spent_today"]


def _send_both(app: API, keys: tuple[str, str]) -> tuple:
    """The app's two submissions of a late task, at once: fluxhook's own route and the drop-in."""
    with ThreadPoolExecutor(2) as pool:
        own = pool.submit(app.post, "/v1/jobs", json={"model": MODEL, "input": INPUT},
                          headers={"Idempotency-Key": keys[0]}, timeout=60)
        drop_in = pool.submit(app.post, f"/v1/{MODEL}", json=INPUT, headers={"Idempotency-Key": keys[1]},
                              timeout=60)
        return own.result(), drop_in.result()


@pytest.fixture()
def late_bfl(sim):
    sim.settings(submit_delay=LATE, result_cost_fields={"cost": STATED})
    return sim


def test_a_send_bfl_answers_too_late_is_one_job_one_task_and_its_bound_counts_until_bfl_states_the_price(
        api, late_bfl):
    sim = late_bfl
    _, app_a = make_key(api)
    _, app_b = make_key(api)
    keys = (f"late-{uuid.uuid4()}", f"late-{uuid.uuid4()}")

    own, drop_in = _send_both(app_a, keys)
    assert own.status_code == 202, own.text  # never a 502 once the task may be at BFL
    job = own.json()
    assert (job["status"], job["bfl_id"], job["cost"]) == ("submitted", None, None)
    assert drop_in.status_code == 200, drop_in.text
    answered = drop_in.json()
    assert answered["id"].startswith("job_") and answered["id"] != job["id"] and answered["cost"] is None
    assert answered["polling_url"].endswith(f"/v1/get_result?id={answered['id']}")
    # BFL has not said: each job's bound stands in as A's spend; B has spent nothing.
    assert _spent_today(app_a) == pytest.approx(2 * _bound())
    assert _spent_today(app_b) == 0

    # B meanwhile, with BFL answering in its usual second: its job goes through, its spend its own.
    sim.settings(submit_delay=1.0)
    other = app_b.post("/v1/jobs", json={"model": MODEL, "input": {"prompt": "b's fox"}}, timeout=30)
    assert other.status_code == 202, other.text
    assert other.json()["status"] == "submitted" and other.json()["bfl_id"]

    # The retries get the same jobs, replayed, and send nothing.
    again = app_a.post("/v1/jobs", json={"model": MODEL, "input": INPUT}, headers={"Idempotency-Key": keys[0]})
    assert again.status_code == 202 and again.headers.get(REPLAYED) == "true" and again.json()["id"] == job["id"]
    again_drop_in = app_a.post(f"/v1/{MODEL}", json=INPUT, headers={"Idempotency-Key": keys[1]})
    assert again_drop_in.status_code == 200 and again_drop_in.headers.get(REPLAYED) == "true"
    assert again_drop_in.json()["id"] == answered["id"]

    b_done = app_b.wait_for(other.json()["id"], timeout=30)
    assert b_done["status"] == "stored"
    # BFL made A's tasks late; its callbacks name them, and each job follows its own to the end.
    done = [app_a.wait_for(job_id, timeout=60) for job_id in (job["id"], answered["id"])]
    assert [d["status"] for d in done] == ["stored", "stored"] and all(d["image"] for d in done)
    tasks = {d["bfl_id"] for d in done}
    assert len(tasks) == 2 and None not in tasks and all(sim.task(task)["status"] == "Ready" for task in tasks)
    assert sim.stats()["submitted"] == 3  # one task per job: A's two and B's one, none sent twice
    assert [d["cost"]["credits"] for d in done] == [STATED, STATED]
    # BFL's stated price settled the bound.
    assert _spent_today(app_a) == pytest.approx(2 * STATED)
    assert _spent_today(app_b) == pytest.approx(b_done["cost"]["credits"])
    assert not any(j["id"] in (job["id"], answered["id"]) for j in app_b.get("/v1/jobs").json()["jobs"])
