"""/metrics' gauges read at scrape time for the dashboard: queued jobs by why they wait (``fluxhook_jobs_waiting``,
every app key's and the admin tokens' together), and the Redis server's commands (``INFO``), over a web app in this
process on a real Redis."""

from __future__ import annotations

import time

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import METRICS_TOKEN
from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.wait_reasons import WaitReason
from fluxhook.lifecycle import key_admin
from fluxhook.store.effects import CountStored

DB = 12
PRO, KONTEXT = "flux-2-pro", "flux-kontext-max"
LIMITS = {"BFL_MAX_ACTIVE": "2", "BFL_MODEL_LIMITS": f"{KONTEXT}=1"}


def _scrape(api) -> dict[tuple[str, tuple], float]:
    response = requests.get(api.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                            timeout=10)
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def _queued(svc, model: str = PRO, key_id: str | None = None, *, takes_a_slot: bool) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=model, input={"prompt": "waits"},
              pool=pool_for(model, svc.config.bfl_model_limits), created_at=now, updated_at=now, key_id=key_id)
    svc.jobs.create(job)
    assert bool(svc.slots.acquire(job)) is takes_a_slot
    return job


@pytest.fixture()
def running(local_app, make_services):
    api, _ = local_app(DB, **LIMITS)
    return api, make_services(DB, **LIMITS)


def test_queued_jobs_by_why_they_wait_every_keys_and_the_admins_together(running):
    api, svc = running
    waiting = {reason: _scrape(api)[("fluxhook_jobs_waiting", (("reason", reason),))] for reason in WaitReason}
    assert waiting == dict.fromkeys(WaitReason, 0)  # every reason has its series before any job waits

    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", "max_active": 1}, time.time())
    _queued(svc, PRO, key.id, takes_a_slot=True)
    _queued(svc, KONTEXT, takes_a_slot=True)  # BFL_MAX_ACTIVE's two slots are now taken
    _queued(svc, PRO, key.id, takes_a_slot=False)  # the key holds its max_active
    _queued(svc, PRO, takes_a_slot=False)  # an admin token's: every slot taken
    _queued(svc, KONTEXT, takes_a_slot=False)  # flux-kontext-max's own limit of one

    samples = _scrape(api)
    waiting = {reason: samples[("fluxhook_jobs_waiting", (("reason", reason),))] for reason in WaitReason}
    assert waiting == {**dict.fromkeys(WaitReason, 0), WaitReason.KEY_MAX_ACTIVE: 1, WaitReason.BFL_SLOTS: 1,
                       WaitReason.MODEL_LIMIT: 1}
    assert samples[("fluxhook_jobs", (("status", "queued"),))] == 5


def test_redis_commands_are_the_servers_own_counts_read_at_scrape(running):
    api, svc = running
    first = _scrape(api)
    svc.redis.get("metrics-test-one-more-get")
    second = _scrape(api)

    total = "fluxhook_redis_commands_processed_total"
    # The scrape's own reads and the GET between them: the server's counter, not one fluxhook keeps.
    assert second[(total, ())] > first[(total, ())] >= 1
    calls = {labels[0][1]: value for (name, labels), value in second.items() if name == "fluxhook_redis_command_calls_total"}
    before = {labels[0][1]: value for (name, labels), value in first.items() if name == "fluxhook_redis_command_calls_total"}
    assert calls["get"] >= before.get("get", 0) + 1
    assert calls["hgetall"] >= 1  # what the scrape itself reads the counters with


def test_a_redis_that_refuses_info_leaves_the_families_without_series(redis_server):
    admin = redis.Redis.from_url(redis_server.url)
    user = f"no-info-{time.time_ns()}"
    admin.acl_setuser(user, enabled=True, passwords=["+not-a-secret-test-pw"], commands=["+@all", "-info"],
                      keys=["*"], channels=["*"])
    try:
        refused = redis.Redis.from_url(redis_server.url, username=user, password="not-a-secret-test-pw")
        with pytest.raises(redis.exceptions.ResponseError):
            refused.info("stats")
        families = list(metrics.redis_families(refused))
        assert [f.name for f in families] == ["fluxhook_redis_commands_processed", "fluxhook_redis_command_calls"]
        assert all(not f.samples for f in families)
        refused.close()
    finally:
        admin.acl_deluser(user)
        admin.close()


def test_the_seconds_of_storing_waiting_and_the_sends_held_for_storage(running):
    api, svc = running
    samples = _scrape(api)
    [store] = [dict(labels)["store"] for name, labels in samples if name == "fluxhook_store_backlog_seconds"]
    assert samples[("fluxhook_store_backlog_seconds", (("store", store),))] == 0
    assert samples[("fluxhook_sends_waiting_storage", ())] == 0

    # 40 results not stored, 60 stored over the last minute (one a second): 40 s of storing wait.
    now = time.time()
    svc.redis.zadd(svc.store.keys.status(st.READY), {f"job_{i:03d}": 0 for i in range(40)})
    svc.store.tallies.add([CountStored(now - 60 + i) for i in range(5, 65)])
    samples = _scrape(api)
    assert 35 <= samples[("fluxhook_store_backlog_seconds", (("store", store),))] <= 50
    assert samples[("fluxhook_store_backlog", (("store", store),))] == 40

    # Storage holds sends back: every job in line waits for it, and says so.
    svc.redis.set(svc.store.keys.store_held, "|40|0.1", px=10_000)
    _queued(svc, PRO, takes_a_slot=False)
    _queued(svc, PRO, takes_a_slot=False)
    samples = _scrape(api)
    assert samples[("fluxhook_sends_waiting_storage", ())] == 2
    assert samples[("fluxhook_jobs_waiting", (("reason", "storage"),))] == 2
