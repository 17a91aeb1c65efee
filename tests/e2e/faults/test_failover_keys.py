"""A request refused in a Redis switch leaves its Idempotency-Key free: the Procfile's web and worker on a
primary, two replicas and three sentinels (devtools/replicated_redis.py), REDIS_MIN_REPLICAS=1, the primary switched
over as planned (SENTINEL FAILOVER). A retry after the switch makes the job, or gets the one the first request made,
and is never answered 409 idempotency_key_in_use, even where the first request's release of its key was lost with
the old primary. The long run: make chaos-failover."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis

from conftest import API, API_TOKEN
from devtools.processes import wait_until
from failover_helpers import failover_stack
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.idempotency import HELD, Hold, IdempotencyStore
from fluxhook.store.jobs import JobStore
from receiver import idempotency_keys
from receiver.idempotency import KEY_HOLD_LEASE, REPLAYED


@pytest.fixture()
def switched(redis_server, simulator, _spies, tmp_path):
    yield from failover_stack(redis_server, simulator, _spies, tmp_path, replicas=2)


def _body(key: str) -> dict:
    return {"model": "flux-2-pro", "input": {"prompt": f"switch {key}"}}


def _post(api: API, key: str) -> tuple[int, str, dict]:
    answer = api.post("/v1/jobs", json=_body(key), headers={"Idempotency-Key": key}, timeout=15)
    payload = answer.json()
    return answer.status_code, (payload.get("error") or {}).get("code", ""), {**payload, REPLAYED: answer.headers.get(
        REPLAYED)}


class Refused(threading.Thread):
    """Submits with a new key every tenth of a second until stopped; keeps the keys refused 503 not_replicated."""

    def __init__(self, api: API):
        super().__init__(daemon=True)
        self.api, self.stop, self.keys = api, threading.Event(), []

    def run(self) -> None:
        while not self.stop.wait(0.1):
            key = uuid.uuid4().hex
            try:
                status, code, _ = _post(self.api, key)
            except (OSError, ValueError):
                continue
            if status == 503 and code == "not_replicated":
                self.keys.append(key)


def _retried(api: API, key: str, statuses: list[int]) -> dict:
    """Retry ``key``'s request until it is acknowledged, noting every answer's status; the acknowledged job."""

    def acknowledged() -> dict | None:
        status, _, job = _post(api, key)
        statuses.append(status)
        return job if status == 202 else None

    return wait_until(acknowledged, timeout=30, interval=0.25, message=f"the retry of {key} acknowledged")


def test_a_request_refused_in_a_planned_switch_leaves_its_key_free_for_the_retry(switched):
    stack, topology = switched
    api = API(stack.base_url)
    old = topology.primary_port()
    primary = redis.Redis(port=old, socket_timeout=5)
    began = primary.info("replication")["master_replid"]
    store, jobs = IdempotencyStore(primary), JobStore(primary)
    # What requests refused 503 in the switch leave when their release was lost with the old primary: a hold that
    # reached the replicas before the switch, one with the job its request made.
    lost, made = uuid.uuid4().hex, uuid.uuid4().hex
    uses = {key: idempotency_keys.key_use(API_TOKEN, key, "POST", "/v1/jobs", json.dumps(_body(key)).encode())
            for key in (lost, made)}
    assert store.begin(uses[lost], KEY_HOLD_LEASE, began).state == HELD
    first = store.begin(uses[made], KEY_HOLD_LEASE, began)
    job, _ = jobs.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"),
                         naming=Hold(uses[made], first.ticket, first.until_ms, began))
    assert primary.wait(2, 5000) == 2

    refused = Refused(api)
    refused.start()
    asked = topology.planned_failover()
    topology.wait_for_failover(old, since=asked)
    switched_at = time.monotonic()
    wait_until(lambda: time.monotonic() - switched_at > 1.0, message="a second of requests after the switch")
    refused.stop.set()
    refused.join(timeout=20)

    statuses: list[int] = []
    fresh = _retried(api, lost, statuses)
    replayed = _retried(api, made, statuses)
    for key in refused.keys:
        assert _retried(api, key, statuses)["status"]
        # Made once, whatever the first request made before its refusal.
        assert len(api.get("/v1/jobs", params={"q": f"switch {key}"}).json()["jobs"]) == 1, key
    assert 409 not in statuses, statuses
    assert fresh[REPLAYED] is None and fresh["id"] != job.id
    assert replayed["id"] == job.id and replayed[REPLAYED] == "true"
