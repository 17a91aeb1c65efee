"""What an app key's counters refuse for certain before a request's body is read (lifecycle/steps/head_limits.py):
each check against its limit, which requests it judges, and a replayed Idempotency-Key that none of them refuses."""

from __future__ import annotations

from dataclasses import replace

from fluxhook.core.errors import RateLimited
from fluxhook.lifecycle.steps.head_limits import CHECKS, Asks, Check, refusal
from fluxhook.store.app_keys import AppKey
from fluxhook.store.key_counters import Counters

NOW = 1_000_000.0
KEY = AppKey(id="key_0123456789abcdef", name="app", prefix="fhk_0123", secret_sha256="0" * 64,
             requests_per_minute=2, daily_credits=1.5, max_queued=10)
CALM = Counters(record={}, queue_full=None, requests_in_window=1, oldest_request=NOW - 50, spent_today=1_499_999,
                replayed=False, items_full_at=NOW + 10, items_today=99, items_defaults=(20_000, 100))


def test_within_every_limit_nothing_is_refused():
    assert all(refusal(asks, KEY, CALM, NOW) is None for asks in Asks)


def test_at_its_rate_a_submission_track_or_batch_waits_until_its_oldest_leaves_the_minute():
    refused = refusal(Asks.TRACK, KEY, replace(CALM, requests_in_window=2), NOW)
    assert refused is not None and refused.code == "rate_limited" and abs(refused.retry_after - 10.0) < 1e-6
    assert refusal(Asks.JOB, replace(KEY, requests_per_minute=None), replace(CALM, requests_in_window=99), NOW) is None


def test_its_days_credits_spent_refuse_jobs_and_batches_not_tracks():
    spent = replace(CALM, spent_today=1_500_000)
    assert refusal(Asks.JOB, KEY, spent, NOW).code == "budget_exceeded"
    assert refusal(Asks.BATCH, KEY, spent, NOW).status == 402
    assert refusal(Asks.TRACK, KEY, spent, NOW) is None


def test_a_full_queue_refuses_all_three_naming_its_figures():
    refused = refusal(Asks.BATCH, KEY, replace(CALM, queue_full=(7, 3, 10)), NOW)
    assert refused.code == "queue_full" and refused.retry_after == 60 and "10 jobs and batch items queued" in refused.message


def test_its_days_items_made_refuse_all_three_until_the_day_ends():
    made = replace(CALM, items_today=100)
    refused = refusal(Asks.TRACK, KEY, made, NOW)
    assert refused.code == "rate_limited" and "100 jobs and batch items a UTC day" in refused.message
    assert all(refusal(asks, KEY, made, NOW).retry_after > 0 for asks in Asks)
    assert refusal(Asks.JOB, replace(KEY, items_per_day=101), made, NOW) is None  # the key's own limit holds


def test_an_items_bucket_without_room_for_one_refuses_until_one_comes_back():
    # 20,000 a minute (3 ms an item) in a bucket of 10,000: full again 30 s from now means empty now.
    empty = replace(CALM, items_full_at=NOW + 30)
    refused = refusal(Asks.BATCH, KEY, empty, NOW)
    assert refused.code == "rate_limited" and abs(refused.retry_after - 0.003) < 1e-6
    assert refusal(Asks.BATCH, KEY, replace(CALM, items_full_at=NOW + 29.99), NOW) is None


def test_a_replayed_idempotency_key_is_refused_by_none():
    worst = replace(CALM, requests_in_window=5, spent_today=10**9, queue_full=(10, 0, 10), replayed=True,
                    items_today=10**6)
    assert all(refusal(asks, KEY, worst, NOW) is None for asks in Asks)


def test_a_new_check_is_one_more_entry():
    def items_spent(key, counters, now):
        return RateLimited("this app key's items for this minute are spent", retry_after=30)

    extra = (*CHECKS, Check(frozenset({Asks.BATCH}), items_spent))
    assert refusal(Asks.BATCH, KEY, CALM, NOW, extra).retry_after == 30
    assert refusal(Asks.JOB, KEY, CALM, NOW, extra) is None
