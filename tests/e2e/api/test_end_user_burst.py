"""An end user's burst against its daily credits over real HTTP, against the Procfile's processes (gunicorn's web
processes, the workers, the simulator) and a second web process: 12 jobs of end user u1 posted at once while BFL's one
slot is taken (so none is sent within its request: each is queued for a worker's sender) are answered as the same jobs
one at a time would be, the rest refused 402 naming u1 at the door, never left queued for the next day; exactly the
admitted ones are stored, while u2 of the same key and u1 of another key go on. An item that still waits
for u1's spent day (a batch's, which waits for the day: docs/api.md, batches) names u1's reason, not its key's."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import API
from devtools.processes import wait_until
from helpers import assert_error, stack_on_db
from key_helpers import as_key, make_key, second_web

DB = 10  # this module's stack (the other module on it runs its stack before or after it, one at a time)
BURST = 12
SMALL = {"width": 512, "height": 512}
ALLOWANCE = 9  # credits: three jobs of SMALL, at BFL's price of 3 (the catalog's bound too)


@pytest.fixture(scope="module")
def webs(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("end-user-burst")), DB,
                     BFL_MAX_ACTIVE="1") as running:
        with second_web(running.env) as other:
            yield API(running.base_url), other


def _post(client: API, end_user: str, n: int):
    return client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"{end_user} {n}", **SMALL},
                                         "end_user": end_user})


def _stored(client: API, ids: list[str]) -> None:
    wait_until(lambda: all(client.job(i)["status"] == "stored" for i in ids), timeout=60, interval=0.3,
               message="the admitted jobs stored")


def test_an_end_users_burst_past_its_daily_credits_is_refused_at_the_door_as_one_at_a_time(webs, sim):
    admin, second = webs
    price = (admin.wait_for(_post(admin, "probe", 0).json()["id"], "stored"))["cost"]["credits"]
    admitted_one_at_a_time = math.ceil(ALLOWANCE / price)  # each admitted while the spend is below the allowance
    created, app = make_key(admin, end_user_limits={"daily_credits": ALLOWANCE})
    other, other_key = make_key(admin, end_user_limits={"daily_credits": ALLOWANCE})
    clients = [app, as_key(second, created["key"])]  # gunicorn's processes and another web process
    holder = admin.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] holds the slot"}})
    assert holder.json()["status"] == "submitted", holder.text

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(lambda n: _post(clients[n % 2], "u1", n), range(BURST)))

    codes = sorted(r.status_code for r in answers)
    assert codes == [202] * admitted_one_at_a_time + [402] * (BURST - admitted_one_at_a_time), codes
    for refused in (r for r in answers if r.status_code == 402):
        message = assert_error(refused, 402, "budget_exceeded")["message"]
        assert "end user 'u1'" in message and f"daily_credits {ALLOWANCE}" in message, message
        assert 0 < int(refused.headers["Retry-After"]) <= 86_400  # the end user's day turns then
    ids = [r.json()["id"] for r in answers if r.status_code == 202]
    # The key's other end user, and another key's u1, each have an allowance of their own.
    theirs = [_post(app, "u2", 0), *(_post(other_key, "u1", n) for n in range(admitted_one_at_a_time))]
    assert [r.status_code for r in theirs] == [202] * len(theirs), [r.text for r in theirs]
    assert {app.job(i)["status"] for i in ids} == {"queued"}  # none was sent within its request

    sim.complete(holder.json()["bfl_id"])
    _stored(app, ids)
    _stored(admin, [r.json()["id"] for r in theirs])
    listed = app.get("/v1/jobs?end_user=u1&limit=100").json()["jobs"]
    assert sorted(j["id"] for j in listed) == sorted(ids)  # nothing of the refused ones was created
    assert [r["credits"] for r in app.get("/v1/usage?end_user=u1").json()["days"]] == [price * len(ids)]
    assert_error(_post(app, "u1", BURST), 402, "budget_exceeded")  # its day is spent

    print(f"burst of {BURST}: {len(ids)} accepted, {BURST - len(ids)} refused 402; price {price}, "
          f"allowance {ALLOWANCE}; u2 and key {other['name']}'s u1 went on")


def test_a_batch_item_left_waiting_by_its_end_users_spent_day_names_the_end_users_reason(webs, sim):
    """A batch's items reserve one at a time as they are sent (docs/api.md, batches): those past the end user's daily credits
    wait for the next day, and say it is the end user's day, not the key's (the key's own is far from spent)."""
    admin, _ = webs
    admin.wait_for(_post(admin, "probe", 1).json()["id"], "stored")  # BFL's price known: items go bounded
    _, app = make_key(admin, daily_credits=1000, end_user_limits={"daily_credits": ALLOWANCE})
    _, other_key = make_key(admin, daily_credits=1000, end_user_limits={"daily_credits": ALLOWANCE})
    batch = app.post("/v1/batches", json={"model": "flux-2-pro", "end_user": "u3", "items": [
        {"input": {"prompt": f"u3 item {n}", **SMALL}} for n in range(4)]})
    assert batch.status_code == 202, batch.text
    path = f"/v1/jobs?batch_id={batch.json()['id']}&limit=10"

    def settled():
        items = app.get(path).json()["jobs"]
        waiting = [j for j in items if j["status"] == "queued" and (j["waiting"] or {}).get("until")]
        return items if len(items) == 4 and len(waiting) + sum(j["status"] == "stored" for j in items) == 4 else None

    items = wait_until(settled, timeout=60, interval=0.3, message="the items stored or waiting for the day")
    assert sorted(j["status"] for j in items) == ["queued", "stored", "stored", "stored"]
    assert [j["waiting"]["reason"] for j in items if j["status"] == "queued"] == ["end_user_daily_credits"]
    # Another key's u3 goes on.
    admin.wait_for(_post(other_key, "u3", 0).json()["id"], "stored")
    # What waits for tomorrow is canceled: at UTC midnight it would reach a later test's simulator.
    assert app.post(f"/v1/batches/{batch.json()['id']}/cancel").status_code == 200
