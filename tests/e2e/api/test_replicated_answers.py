"""REDIS_MIN_REPLICAS=1: a submission's 202, a callback's 200, a key's creation and revocation
and an Idempotency-Key's record are answered only once a replica has them; otherwise 503 with Retry-After,
and a submission retried with its Idempotency-Key gets the first job. An in-process app on the suite's
Redis, with a real replica attached to it for the confirmed half."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid

import pytest
import requests

from conftest import API, ready_payload
from devtools.processes import RedisServer
from devtools.stack import SIMULATOR_KEY
from helpers import assert_error, replica_of

DB = 12  # a database of these tests' own
UNCONFIRMED = {"REDIS_MIN_REPLICAS": "1", "REDIS_WAIT_MS": "100"}


@pytest.fixture(scope="module")
def replica(redis_server):
    """A real replica of the suite's Redis for this module, detached after it."""
    with replica_of(redis_server) as server:
        yield server


@contextlib.contextmanager
def stalled(replica: RedisServer):
    """The replica stopped (SIGSTOP) for the block: attached, but acknowledging nothing."""
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)


def _unconfirmed(response) -> dict:
    assert response.headers.get("Retry-After") == "1", response.headers
    return assert_error(response, 503, "not_replicated")


@pytest.fixture()
def app(local_app, replica) -> API:
    api, _ = local_app(DB, **UNCONFIRMED)
    return api


def test_a_submission_waits_for_a_replica_and_its_retry_gets_the_first_job(app, replica):
    key = f"order-{uuid.uuid4()}"
    body = {"model": "flux-2-pro", "input": {"prompt": "a fox"}}
    with stalled(replica):
        first = app.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        assert "replicas did not confirm" in _unconfirmed(first)["message"]
        assert app.get("/v1/jobs").status_code == 200  # reads wait for nothing

    retried = app.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
    assert retried.status_code == 202, retried.text
    assert retried.headers.get("Idempotent-Replayed") == "true"  # the first request's job, not a second
    assert len(app.get("/v1/jobs").json()["jobs"]) == 1


def test_the_bfl_compatible_submission_answers_in_bfls_shape(app, replica):
    with stalled(replica):
        response = app.post("/v1/flux-2-pro", json={"prompt": "a fox"})
    assert response.status_code == 503 and response.headers.get("Retry-After") == "1"
    assert set(response.json()) == {"detail"} and "replicas" in response.json()["detail"]


def test_key_changes_wait_for_a_replica(app, replica):
    with stalled(replica):
        _unconfirmed(app.post("/v1/keys", json={"name": "unconfirmed"}))
    created = app.post("/v1/keys", json={"name": "confirmed"})
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    with stalled(replica):
        _unconfirmed(app.delete(f"/v1/keys/{key_id}"))
    assert app.delete(f"/v1/keys/{key_id}").status_code in (200, 204)


def test_a_callback_is_answered_200_only_once_a_replica_has_it(app, replica, sim):
    # A task the app sent to BFL itself, tracked: with replicas required, fluxhook's own submissions go
    # through a worker, and this app has none.
    task = requests.post(f"{sim.url}/v1/flux-2-pro", headers={"x-key": SIMULATOR_KEY}, timeout=10,
                         json={"prompt": "[pending] tracked"}).json()
    tracked = app.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    job = tracked.json()
    payload = ready_payload(job["bfl_id"], f"{sim.url}/x.png")
    with stalled(replica):
        _unconfirmed(app.callback(job["id"], payload))  # BFL calls back again later
    assert app.callback(job["id"], payload).status_code == 200
