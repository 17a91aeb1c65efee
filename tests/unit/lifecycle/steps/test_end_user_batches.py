"""A batch's items against their end users' requests_per_minute and max_queued (fluxhook/lifecycle/steps/
end_user_limits.py ``take_batch``, ``lua/end_user_take_batch.lua``): each item counts as one request and one queued
job of its end user, as a job of its own would; a batch that would take one end user past either is refused whole
(429 naming it), nothing created or counted, while the key's other end users and another key's end user of the same
name go on. In-process on a real Redis; over HTTP, with two web processes racing: tests/e2e/api/test_end_user_blocks.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.core.errors import BudgetExceeded, QueueFull, RateLimited
from fluxhook.credits import accounting
from fluxhook.lifecycle.batching import BatchRequest, create_batch, items
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller

DB = 15  # make_services flushes it before and after


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _job(svc, caller: Caller, end_user: str | None):
    return create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] one"}, end_user=end_user),
                      submit_here=False).job


def _batch(svc, caller: Caller, *end_users: str | None, end_user: str | None = None):
    spool = ItemSpool.of(BatchItem({"prompt": f"[pending] item {n}"}, {}, named) for n, named in enumerate(end_users))
    return create_batch(svc, caller, BatchRequest(PRO, spool, end_user=end_user))


def _made(svc) -> int:
    return svc.redis.zcard(KEYS.all_jobs)


def test_a_batch_past_an_end_users_requests_per_minute_is_refused_whole_and_counts_nothing(svc):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 5})
    b = app_caller(svc, end_user_limits={"requests_per_minute": 5})
    for _ in range(3):
        _job(svc, a, "x")
    before = _made(svc)

    with pytest.raises(RateLimited) as caught:
        _batch(svc, a, "x", "y", "x", "y", "x")  # x's 3 more would be 6 of its 5

    assert caught.value.code == "rate_limited" and "end user 'x'" in caught.value.message
    assert 0 < (caught.value.retry_after or 0) <= 60
    assert _made(svc) == before and svc.store.batches.list(a.key_id, every_owner=False, limit=5, cursor=None)[0] == []
    # Nothing was counted for y, whose items were refused with x's: its 5 are whole.
    assert len(list(items(svc, _batch(svc, a, "y", "y", "y", "y", "x", "x")))) == 6  # x's 5 now spent
    with pytest.raises(RateLimited) as caught:
        _job(svc, a, "x")  # a single job sees the batch's items in x's minute
    assert "end user 'x'" in caught.value.message
    assert _job(svc, a, "y").status == st.QUEUED  # y's 5th
    with pytest.raises(RateLimited):
        _job(svc, a, "y")
    # The batch's own end user counts for the items that name none; another key's x, and no end user, go on.
    with pytest.raises(RateLimited):
        _batch(svc, a, None, None, end_user="x")
    assert _batch(svc, b, None, None, None, None, None, end_user="x").total == 5
    assert _batch(svc, a, None, None, None, None, None, None).total == 6
    assert _batch(svc, ADMIN, *["x"] * 7).total == 7  # an admin token's end users have no limits


def test_a_batch_with_more_items_for_an_end_user_than_its_minute_is_told_to_split(svc):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 3})

    with pytest.raises(RateLimited) as caught:
        _batch(svc, a, *["x"] * 4)

    assert "4 items for end user 'x'" in caught.value.message and "at most 3" in caught.value.message


def test_a_batch_past_an_end_users_max_queued_is_refused_whole_and_its_items_hold_its_queue(svc):
    a = app_caller(svc, end_user_limits={"max_queued": 4})
    b = app_caller(svc, end_user_limits={"max_queued": 4})
    first = _job(svc, a, "x")
    _job(svc, a, "x")
    before = _made(svc)

    with pytest.raises(QueueFull) as caught:
        _batch(svc, a, "x", "y", "x", "x")

    assert caught.value.code == "queue_full" and "end user 'x'" in caught.value.message
    assert (caught.value.queued, caught.value.limit) == (2, 4)
    assert _made(svc) == before
    made = list(items(svc, _batch(svc, a, "x", "y", "x", "y", "y", "y")))
    assert [j.status for j in made] == [st.QUEUED] * 6
    # The items' jobs are x's queued jobs, by their own ids: a single job finds its queue full...
    queued = {i.decode() for i in svc.redis.zrange(KEYS.end_user_queued(a.key_id, "x"), 0, -1)}
    assert {j.id for j in made if j.end_user == "x"} <= queued
    with pytest.raises(QueueFull):
        _job(svc, a, "x")
    with pytest.raises(QueueFull):
        _batch(svc, a, "y")
    # ...until one of them leaves the line: its room comes back. Another key's x goes on all along.
    svc.jobs.transition(first.id, st.CANCELED, only_from=(st.QUEUED,))
    assert _job(svc, a, "x").status == st.QUEUED
    assert _batch(svc, b, "x", "x", "x", "x").total == 4


def test_a_batch_refused_after_its_end_users_counted_gives_their_counts_back(svc):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 3, "max_queued": 3}, daily_credits=1)
    svc.redis.hincrby(KEYS.usage(accounting.utc_day(time.time())), accounting.spent_field(a.key_id),
                      accounting.to_micro(1))

    with pytest.raises(BudgetExceeded):
        _batch(svc, a, "x", "x", "x")  # its key's day is spent: 402 after its end users' counts were taken

    assert svc.redis.zcard(KEYS.end_user_requests(a.key_id, "x")) == 0
    assert svc.redis.zcard(KEYS.end_user_queued(a.key_id, "x")) == 0
