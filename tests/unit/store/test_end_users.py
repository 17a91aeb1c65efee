"""An end user's counted jobs (fluxhook/store/end_users.py) on a real Redis: a full queue prunes only what left it for
good (a job no longer queued, or one never recorded well after it was counted), never a job whose request is still
recording it, so concurrent requests cannot pass the limit; two keys' end users of one name are counted apart."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fluxhook.core.end_users import EndUserLimits
from fluxhook.store.end_users import UNMADE_GRACE, EndUserRecord, Verdict
from fluxhook.store.keys import KEYS

DB = 12
KEY, OTHER = "key_00000000000000f1", "key_00000000000000f2"
LIMITS = EndUserLimits(max_queued=2)


@pytest.fixture()
def store(make_services):
    return make_services(DB).store.end_users


def _take(store, key: str, job_id: str, now: float):
    return store.take(key, "x", job_id=job_id, member=job_id, day="2026-11-28", now=now, moderation_limit=None,
                      defaults=LIMITS)


def test_a_full_queue_keeps_jobs_on_their_way_and_drops_those_never_made(store):
    now = time.time()
    assert _take(store, KEY, "job_a", now - UNMADE_GRACE - 1).verdict is Verdict.TAKEN  # counted long ago, never made
    assert _take(store, KEY, "job_b", now).verdict is Verdict.TAKEN  # its request is recording it

    full = _take(store, KEY, "job_c", now)

    assert full.verdict is Verdict.QUEUE_FULL and set(full.queued) == {"job_a", "job_b"}
    assert store.prune(KEY, "x", full.queued) == 1
    assert store.connection.zrange(KEYS.end_user_queued(KEY, "x"), 0, -1) == [b"job_b"]
    assert _take(store, OTHER, "job_d", now).verdict is Verdict.TAKEN  # another key's x has a queue of its own


def test_a_change_that_meets_another_writer_is_worked_out_again_from_what_that_writer_left(store):
    seen = []

    def block(record: EndUserRecord) -> EndUserRecord:
        seen.append(record)
        if len(seen) == 1:  # another admin's change lands between this one's read and its write
            store.connection.hset(KEYS.end_users(KEY), "x", EndUserRecord(lifted=("2026-11-27", 3)).encode())
        return replace(record, blocked="2026-11-28")

    kept = store.change(KEY, "x", block)

    assert seen == [EndUserRecord(), EndUserRecord(lifted=("2026-11-27", 3))]
    assert kept == store.record(KEY, "x") == EndUserRecord(blocked="2026-11-28", lifted=("2026-11-27", 3))
