"""Fair turns inside a key over real HTTP: the Procfile's processes on a Redis of their own, BFL_MAX_ACTIVE=2, the
simulator's tasks pending until the test ends them. One end user's backlog of its key's jobs waits while another end
user of the same key posts one: the next slot that frees goes to that one, not to the backlog's next. The rule itself,
on Redis: tests/unit/store/test_end_user_turns.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from conftest import API
from devtools.processes import wait_until
from helpers import stack_on_db
from key_helpers import make_key

BACKLOG = 8


@pytest.fixture(scope="module")
def two_slots(own_redis, simulator, _spies, tmp_path_factory):
    with stack_on_db(own_redis, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("end-user-turns")), 0,
                     BFL_MAX_ACTIVE="2", WORKER_PROCESSES="1") as running:
        yield running


def _post(app: API, prompt: str, end_user: str) -> str:
    response = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"[pending] {prompt}"},
                                          "end_user": end_user})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _complete(sim, app: API, job_id: str) -> None:
    bfl_id = app.job(job_id)["bfl_id"]
    requests.post(f"{sim.url}/_sim/tasks/{bfl_id}/complete", json={"outcome": "ready"}, timeout=10).raise_for_status()


def _submitted(app: API, job_ids: list[str]) -> list[str]:
    return [j for j in job_ids if app.job(j)["status"] == "submitted"]


def test_another_end_user_of_the_key_waits_for_one_of_the_flooders_turns_at_most(two_slots, sim):
    _, app = make_key(API(two_slots.base_url))
    running = [_post(app, f"flood {n}", "flooder") for n in range(2)]
    for job_id in running:
        app.wait_for(job_id, "submitted")
    backlog = [_post(app, f"flood {n}", "flooder") for n in range(2, 2 + BACKLOG)]
    other = _post(app, "the other's", "someone else")
    assert {app.job(j)["status"] for j in [*backlog, other]} == {"queued"}

    # The flooder's jobs went out as they came, so it starts level with the other: its oldest job may take the slot
    # that frees first (its one turn); the next is the other's, whatever the flooder's backlog.
    _complete(sim, app, running[0])
    went = wait_until(lambda: _submitted(app, [other, *backlog]), timeout=30, message="a slot freed to be taken")
    if went != [other]:
        assert went == [backlog[0]]
        _complete(sim, app, running[1])
        app.wait_for(other, "submitted", timeout=30)
    assert _submitted(app, backlog) in ([], [backlog[0]])
    # And the flooder's backlog goes on in its own order behind it.
    _complete(sim, app, backlog[0] if went != [other] else running[1])
    wait_until(lambda: _submitted(app, backlog), timeout=30, message="the backlog's next job to take the next slot")
    assert app.job(other)["end_user"] == "someone else"
