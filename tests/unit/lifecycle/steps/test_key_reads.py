"""Every request of an app key is a read against its read limit (fluxhook/lifecycle/steps/key_limits.py take_read,
take_link_read; fluxhook/store/app_keys.py take_read) on a real Redis: its own ``reads_per_minute`` else
READS_PER_MINUTE, a read's cost, a refusal remembered by the process so a key already refused costs Redis nothing
until its bucket could admit a read, and its jobs' signed links in a bucket of their own. Where every request is
counted: tests/unit/receiver/test_bulkheads.py; over HTTP: tests/e2e/api/test_every_read_counted.py."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from fluxhook.core import signing
from fluxhook.core.errors import RateLimited
from fluxhook.core.job import new_job_id
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.steps import key_limits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller

DB = 15  # as test_key_limits.py: no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB, READS_PER_MINUTE="600")


class CountedScript:
    """The read bucket's Lua script, counting the times Redis is asked."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.script(*args, **kwargs)


def _take(svc, key, cost: int, now: float) -> None:
    key_limits.take_read(svc.store.app_keys, svc.config, Caller(key), cost, now)


def test_a_keys_reads_are_limited_by_their_cost_and_leave_another_key_and_an_admin_alone(svc):
    now = time.time()
    reader, _ = key_admin.create_key(svc, {"name": "reader", "reads_per_minute": 60}, now)  # 6 at once, 1 a second
    calm, _ = key_admin.create_key(svc, {"name": "calm", "reads_per_minute": 60}, now)

    _take(svc, reader, key_limits.read_cost(100), now)  # 5 units
    _take(svc, reader, key_limits.read_cost(20), now)  # 1
    with pytest.raises(RateLimited) as limited:
        _take(svc, reader, key_limits.read_cost(21), now)

    assert limited.value.retry_after == pytest.approx(2.0, abs=0.002)
    assert "60 reads a minute" in limited.value.message and "READS_PER_MINUTE" in limited.value.message
    for _ in range(6):
        _take(svc, calm, key_limits.STREAM_READ_COST, now)
    for _ in range(100):
        key_limits.take_read(svc.store.app_keys, svc.config, ADMIN, 1, now)


def test_a_key_without_its_own_reads_per_minute_has_the_services(svc):
    now = time.time()
    plain, _ = key_admin.create_key(svc, {"name": "plain"}, now)  # READS_PER_MINUTE 600: 60 at once

    for _ in range(60):
        _take(svc, plain, 1, now)
    with pytest.raises(RateLimited) as limited:
        _take(svc, plain, 1, now)

    assert limited.value.retry_after == pytest.approx(0.1, abs=0.002) and "600 reads a minute" in limited.value.message


def test_a_key_refused_is_refused_without_redis_until_its_bucket_could_admit_a_read(svc):
    now = time.time()
    flooder, _ = key_admin.create_key(svc, {"name": "flooder", "reads_per_minute": 60}, now)
    store = svc.store.app_keys
    store._take_read = counted = CountedScript(store._take_read)
    for _ in range(6):
        _take(svc, flooder, 1, now)
    with pytest.raises(RateLimited):
        _take(svc, flooder, 1, now)
    assert counted.calls == 7

    # Until one unit is back (1 s on), every read of the key is refused from memory, however many, whatever its cost.
    for offset in (0.0, 0.5, 0.999):
        for cost in (1, 5):
            with pytest.raises(RateLimited) as limited:
                _take(svc, flooder, cost, now + offset)
            assert limited.value.retry_after == pytest.approx(1.0 - offset + (cost - 1), abs=0.002)  # as Redis says
    assert counted.calls == 7
    # Then Redis is asked again, and admits it: memory never refuses longer than the bucket would.
    _take(svc, flooder, 1, now + 1.002)  # (Redis counts whole milliseconds)
    assert counted.calls == 8


def test_a_refusal_remembered_is_never_longer_than_the_bucket_refuses(svc):
    now = time.time()
    lister, _ = key_admin.create_key(svc, {"name": "lister", "reads_per_minute": 60}, now)
    _take(svc, lister, 5, now)
    with pytest.raises(RateLimited) as limited:  # 1 unit left: a page of 5 waits 4 s
        _take(svc, lister, 5, now)

    assert limited.value.retry_after == pytest.approx(4.0, abs=0.002)
    _take(svc, lister, 1, now)  # one unit was there all along: the page's refusal does not refuse it


def test_signed_links_count_against_their_jobs_key_in_a_bucket_of_their_own(svc):
    now = time.time()
    shop, _ = key_admin.create_key(svc, {"name": "shop", "reads_per_minute": 60}, now)
    other, _ = key_admin.create_key(svc, {"name": "other", "reads_per_minute": 60}, now)
    found: list[str] = []

    def find(key_id):
        found.append(key_id)
        return svc.store.app_keys.get(key_id)

    def link_read(key_id, at=now):
        key_limits.take_link_read(svc.store.app_keys, svc.config, key_id, find, at)

    for _ in range(6):
        _take(svc, shop, 1, now)  # the key's own reads spent: its page's links still open
    # Ten times its rate (LINK_READS_SHARE): 600 a minute, a tenth of it at once, one back every 0.1 s.
    for _ in range(60):
        link_read(shop.id)
    with pytest.raises(RateLimited) as limited:
        link_read(shop.id)
    assert limited.value.retry_after == pytest.approx(0.1, abs=0.002) and "cache" in limited.value.message
    # What the allowance holds behind a cache over the suite's 30-s window (link_catalog): 600 a minute, half a minute.
    assert "a cache's refills of 300 variant links a window" in limited.value.message

    # Refused from memory: neither the key's record nor its bucket is read again until then.
    asked = len(found)
    with pytest.raises(RateLimited):
        link_read(shop.id, now + 0.05)
    assert len(found) == asked
    link_read(shop.id, now + 0.102)
    # Another key's links, an admin's job's (no key) and a key that no longer exists are not held by it.
    for _ in range(60):
        link_read(other.id)
    for _ in range(100):
        link_read(None)
        link_read("key_00000000000000ff")


def test_the_link_allowance_holds_a_window_of_its_reads_as_a_catalog():
    assert key_limits.link_catalog(600 * key_limits.LINK_READS_SHARE, 3600) == 360_000  # the defaults
    assert key_limits.link_catalog(6_000, 300) == 30_000
    assert key_limits.link_catalog(600, 1) == 10


def test_a_catalog_turning_over_a_window_is_never_refused_and_leaves_another_keys_links_alone(svc):
    # A shop's 5,000 images in three widths behind a cache, with a short window (300 s): the cache asks for each
    # variant once as its job's link turns, at the moment it turns, and another key's page is read all along.
    window, ttl, widths = 300, 3600, 3
    start = 1_800_000_000 - 1_800_000_000 % window
    shop, _ = key_admin.create_key(svc, {"name": "shop"}, start)  # the service's 600 a minute: links 6,000
    other, _ = key_admin.create_key(svc, {"name": "other"}, start)
    catalog = [new_job_id() for _ in range(5_000)]
    assert widths * len(catalog) <= key_limits.link_catalog(600 * key_limits.LINK_READS_SHARE, window)
    turns = Counter(signing.link_times(start, ttl, window, job_id).signed_at + window for job_id in catalog)

    def link_read(key, at):
        key_limits.take_link_read(svc.store.app_keys, svc.config, key.id, svc.store.app_keys.get, at)

    refused = []
    for second in range(start + 1, start + window + 1):  # every job's own turn, once each
        for _ in range(turns[second] * widths):
            try:
                link_read(shop, second)
            except RateLimited:
                refused.append(second)
        link_read(other, second + 0.5)  # the other key's page: never refused
    assert sum(turns.values()) == len(catalog)
    assert refused == []
    # The other key's bucket is its own: a page of 600 at once is still whole after the shop's turn.
    for _ in range(600):
        link_read(other, start + window + 1)
