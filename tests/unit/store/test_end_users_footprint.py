"""What an app's end users cost Redis (fluxhook/store/end_users.py, lua/end_user_take.lua), measured on the suite's
real Redis: 1,000 end users of one key each with a day's counters (a job sent and stored), and the same with their
key limiting each one's requests a minute and queued jobs. The figures docs/scaling.md states come from here; each
key it keeps expires on its own, so the footprint of a month of end users is bounded."""

from __future__ import annotations

import pytest

from fluxhook.core.end_users import EndUserLimits
from fluxhook.store.effects import END_USER_TTL, CountEndUser
from fluxhook.store.keys import KEYS
from helpers import commands_during

DB = 12
KEY, OTHER = "key_00000000000000e1", "key_00000000000000e2"
USERS = 1000
NOON, DAY = 1_795_824_000.0 + 12 * 3600, "2026-11-28"
# The bytes an end user's day of counters may take (measured 257 with names like "user-000123": jobs, credits, stored
# in a hash past its compact size).
DAY_BYTES = 300
# And its minute's requests and queued job ids while its key limits them (measured 303; each expiring within two hours).
LIMITED_BYTES = 400


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _bytes(svc, pattern: str) -> int:
    return sum(svc.redis.memory_usage(key, samples=0) or 0 for key in svc.redis.scan_iter(match=pattern, count=1000))


def _name(n: int) -> str:
    return f"user-{n:06d}"


def test_an_end_users_day_of_counters_is_a_few_fields_of_one_hash_a_key_and_day_that_expires(svc):
    for n in range(USERS):
        svc.store.effects.apply([CountEndUser(KEY, DAY, ((f"{_name(n)}:jobs", 1), (f"{_name(n)}:credits", 3_000_000))),
                                 CountEndUser(KEY, DAY, ((f"{_name(n)}:stored", 1),))])
    svc.store.effects.apply([CountEndUser(OTHER, DAY, (("user-000001:jobs", 1),))])

    day = KEYS.end_user_day(KEY, DAY)
    per_user = svc.redis.memory_usage(day, samples=0) / USERS
    print(f"an end user's day of counters: {per_user:.0f} bytes")
    assert per_user <= DAY_BYTES
    assert 0 < svc.redis.ttl(day) <= END_USER_TTL
    # The other key's end user of the same name is counted apart.
    assert svc.store.end_users.counters(OTHER, [DAY])[DAY] == {"user-000001": {"jobs": 1}}
    assert svc.store.end_users.counters_of(KEY, "user-000001", DAY)["credits"] == 3_000_000


def test_a_limited_end_users_minute_and_queue_expire_on_their_own(svc):
    limits = EndUserLimits(requests_per_minute=10, max_queued=10)
    for n in range(USERS):
        taken = svc.store.end_users.take(KEY, _name(n), job_id=f"job_01KB{n:022d}", member=f"{n:032x}", day=DAY,
                                         now=NOON, moderation_limit=3, defaults=limits)
        assert taken.verdict == 0

    per_user = _bytes(svc, f"{KEYS.prefix}endus*:{KEY}:*") / USERS
    print(f"a limited end user's minute and queue: {per_user:.0f} bytes")
    assert per_user <= LIMITED_BYTES
    for key in svc.redis.scan_iter(match=f"{KEYS.prefix}endus*:{KEY}:*", count=1000):
        assert 0 < svc.redis.pttl(key) <= 2 * 3600 * 1000


def test_a_job_s_end_counted_in_the_hash_its_acceptance_gave_a_life_sets_none_again(svc):
    svc.store.effects.apply([CountEndUser(KEY, DAY, (("first:jobs", 1), ("first:credits", 3_000_000)))])
    life = svc.redis.ttl(KEYS.end_user_day(KEY, DAY))
    ended = commands_during(svc.redis, DB, lambda: svc.store.effects.apply(
        [CountEndUser(KEY, DAY, (("first:stored", 1),), life_set=True)]))
    assert [c["command"].split()[0] for c in ended if c["command"].startswith(("HINCRBY", "EXPIRE"))] == ["HINCRBY"]
    assert 0 < svc.redis.ttl(KEYS.end_user_day(KEY, DAY)) <= life
    # Another owner's day, counted first at an end: its life is set as before.
    svc.store.effects.apply([CountEndUser(OTHER, DAY, (("one:stored", 1),))])
    assert 0 < svc.redis.ttl(KEYS.end_user_day(OTHER, DAY)) <= END_USER_TTL
