"""What an app key makes is bounded by its limits (fluxhook/lifecycle/steps/key_limits.take_request): its jobs, batch
items and tracks count against its ``items_per_day`` and ``items_per_minute``; past either the request is refused
``RateLimited`` with nothing made, one refused for another reason counts nothing, another key goes on, and admin
tokens are not limited. In-process on a real Redis and the simulator."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.errors import QueueFull, RateLimited
from fluxhook.lifecycle.batching import create_batch
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import ADMIN
from fluxhook.lifecycle.tracking import TrackRequest, track_task
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller, batch_request

DB = 13


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB, ITEMS_PER_DAY="8")


def _job(svc, caller, prompt="[pending] one"):
    return create_job(svc, caller, JobRequest(PRO, {"prompt": prompt}), submit_here=False).job


def _today(svc, caller) -> int:
    return int(svc.redis.get(KEYS.key_items_today(caller.key_id, time.strftime("%Y-%m-%d", time.gmtime()))) or 0)


def test_past_its_days_items_a_key_makes_nothing_while_another_key_goes_on(svc, sim):
    a, b = app_caller(svc, items_per_day=5), app_caller(svc)
    create_batch(svc, a, batch_request(3))
    _job(svc, a)
    made = svc.redis.zcard(KEYS.all_jobs)

    with pytest.raises(RateLimited) as caught:
        create_batch(svc, a, batch_request(2))

    assert caught.value.status == 429 and caught.value.code == "rate_limited" and caught.value.retry_after > 0
    assert "5 jobs and batch items a UTC day (items_per_day)" in caught.value.message
    assert svc.redis.zcard(KEYS.all_jobs) == made and svc.redis.zcard(KEYS.owner_batches(a.key_id)) == 1
    track_task(svc, a, TrackRequest("task-of-a-1"))  # the fifth
    with pytest.raises(RateLimited):
        _job(svc, a)
    with pytest.raises(RateLimited):
        track_task(svc, a, TrackRequest("task-of-a-2"))
    assert _today(svc, a) == 5
    # B's limit is the deployment's (ITEMS_PER_DAY 8 here), its own; admin tokens are not limited.
    create_batch(svc, b, batch_request(8))
    with pytest.raises(RateLimited):
        _job(svc, b)
    for n in range(10):
        _job(svc, ADMIN, f"[pending] admin {n}")


def test_a_request_refused_for_another_reason_counts_no_items(svc, sim):
    a = app_caller(svc, items_per_day=4, max_queued=3)
    create_batch(svc, a, batch_request(2))

    with pytest.raises(QueueFull):
        create_batch(svc, a, batch_request(2))

    assert _today(svc, a) == 2
    _job(svc, a)
    assert _today(svc, a) == 3
