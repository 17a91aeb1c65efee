"""An app's receiver holds only its own messages (docs/operating.md, bulkheads): the Procfile's processes with BFL answering a
submission after 1 s and tasks of 3 s. Key A's receiver answers ``HTTP/1.1 200 OK`` and then a byte every 4 s (then
key C's, one that never answers), and A makes 100 cheap notifications (jobs canceled while they wait for A's one
slot); key B's job is then stored and notified as fast as the same job before any of it, in the same run. A's receiver
never holds more than 2 attempts, and each of them ends at the 15 s deadline, recorded, not pending for ever."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from conftest import API
from devtools.processes import wait_until
from devtools.slow_receivers import SILENT, TRICKLE, SlowReceiver
from fluxhook.core.holds import ATTEMPT_DEADLINE
from fluxhook.store.keys import KEYS
from helpers import stack_on_db
from key_helpers import make_key
from notify_helpers import receiving

DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)
MESSAGES = 100
TASK = "[seconds-3]"


@pytest.fixture(scope="module")
def slow_receivers():
    made = {mode: SlowReceiver(mode, every=4.0) for mode in (TRICKLE, SILENT)}
    yield made
    for receiver in made.values():
        receiver.stop()


@pytest.fixture(scope="module")
def good_receiver():
    with receiving(1) as (receiver,):
        yield receiver


@pytest.fixture(scope="module")
def stack(redis_server, simulator, _spies, slow_receivers, good_receiver, tmp_path_factory):
    allowed = ",".join([*(r.host for r in slow_receivers.values()), f"127.0.0.1:{good_receiver.port}"])
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("receiver-bulkheads")),
                     DB, NOTIFY_HOST_ALLOWLIST=allowed) as running:
        yield running


def _stored_and_notified(stack, app: API, receiver, prompt: str) -> tuple[float, float]:
    """One job of ``app``, from its submission to stored, and from its end to its notification's arrival (s), by the
    record's own times (the API's are whole seconds)."""
    job = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"{TASK} {prompt}"}}).json()
    done = wait_until(lambda: (lambda j: j if j["status"] == "stored" else None)(app.get(f"/v1/jobs/{job['id']}").json()),
                      timeout=60, interval=0.05, message=f"{prompt} stored")
    [notified] = receiver.wait_for(job["id"], timeout=60)
    created, completed = (float(t) for t in redis.Redis.from_url(stack.env["REDIS_URL"]).hmget(
        KEYS.job(done["id"]), "created_at", "completed_at"))
    return completed - created, notified.at - completed


def _flood(app: API) -> list[str]:
    """``MESSAGES`` job.ended messages to ``app``'s receiver that cost no credits: jobs canceled while they wait for
    the key's one slot, held by a task BFL never ends."""
    holder = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] holds the slot"}}).json()
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda n: app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {
            "prompt": f"waits {n}"}}).json(), range(MESSAGES)))
        assert {job["status"] for job in made} == {"queued"}
        canceled = list(pool.map(lambda job: app.post(f"/v1/jobs/{job['id']}/cancel").json()["status"], made))
    assert set(canceled) == {"canceled"}
    app.post(f"/v1/jobs/{holder['id']}/cancel")
    return [job["id"] for job in made]


@pytest.mark.parametrize("mode", [TRICKLE, SILENT])
def test_a_receiver_that_trickles_or_never_answers_holds_only_its_own_keys_messages(stack, sim, slow_receivers,
                                                                                      good_receiver, mode):
    sim.settings(submit_delay=1.0)
    admin = API(stack.base_url)
    slow = slow_receivers[mode]
    _, attacker = make_key(admin, notify_url=slow.url(), max_active=1)
    _, other = make_key(admin, notify_url=good_receiver.url())
    baseline = _stored_and_notified(stack, other, good_receiver, "before the flood")

    flooded = _flood(attacker)
    wait_until(lambda: slow.open == 2, timeout=30, message="the slow receiver holding two attempts")
    during = _stored_and_notified(stack, other, good_receiver, "during the flood")

    # B's result and notification as fast as with no such receiver: a task of 3 s, BFL's 1 s, the download.
    assert during[0] <= baseline[0] + 2.0, (baseline, during)
    assert during[1] <= max(baseline[1], 0.0) + 2.0, (baseline, during)
    # A's attempts end at their deadline, each recorded as a retry, two at a time however many wait.
    def attempted():
        listed = attacker.get("/v1/deliveries", params={"limit": 1000}).json()["deliveries"]
        assert {m["job_id"] for m in listed} >= set(flooded)  # and the holder's
        return [m for m in listed if m["attempts"]]

    attempted = wait_until(attempted, timeout=ATTEMPT_DEADLINE * 3, interval=0.5, message="A's first attempts recorded")
    assert all(m["state"] == "pending" and m["attempts"][0]["status"] is None for m in attempted)
    assert all(f"{ATTEMPT_DEADLINE:g} s" in m["attempts"][0]["error"] for m in attempted)
    assert slow.most_open <= 2
