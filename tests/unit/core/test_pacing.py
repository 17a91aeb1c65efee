"""The rule sends to BFL are paced by (fluxhook/core/pacing.py): a backlog of results not yet stored may take at most
a share of the shortest URL life to store, at the rate storage kept; below the floor nothing is judged."""

from __future__ import annotations

import math

from fluxhook.core.pacing import ALL, BULK, MIN_SPAN, NONE, Backlog, PacingRule, holds, level

RULE = PacingRule(share=0.5, shortest_life=600, floor=16)


def test_the_bound_is_the_share_of_the_shortest_life():
    assert RULE.bound == 300 and RULE.on and not PacingRule(0, 600, 16).on


def test_a_backlog_that_storage_clears_within_the_bound_lets_sends_go():
    # 4 stored a second over the last minute: 1,199 results take 299.75 s.
    assert not holds(RULE, Backlog(waiting=1199, stored=240, span=60))
    assert holds(RULE, Backlog(waiting=1200, stored=240, span=60))


def test_a_slow_store_holds_sends_at_a_small_backlog():
    # One result stored every 10 s: 30 take the whole bound.
    assert holds(RULE, Backlog(waiting=30, stored=6, span=60))
    assert not holds(RULE, Backlog(waiting=29, stored=6, span=60))


def test_a_cold_start_sends_until_the_floor_then_waits_for_a_rate():
    assert not holds(RULE, Backlog(waiting=15))
    # Nothing stored of late and a backlog at the floor: storing it would never end.
    assert holds(RULE, Backlog(waiting=16)) and Backlog(waiting=16).seconds == math.inf


def test_pacing_off_never_holds():
    assert not holds(PacingRule(0, 600, 16), Backlog(waiting=10_000))


def test_a_first_burst_is_a_rate_over_one_bucket_at_least():
    assert Backlog(waiting=1, stored=10, span=0).rate == 10 / MIN_SPAN
    assert Backlog(waiting=0, stored=0, span=30).rate == 0 and Backlog(waiting=0).seconds == 0


def test_batch_items_wait_at_the_bound_and_single_jobs_only_halfway_from_it_to_the_whole_life():
    assert RULE.single_bound == 450
    one_a_second = dict(stored=60, span=60)
    assert level(RULE, Backlog(waiting=299, **one_a_second)) == NONE
    assert level(RULE, Backlog(waiting=300, **one_a_second)) == BULK
    assert level(RULE, Backlog(waiting=449, **one_a_second)) == BULK
    assert level(RULE, Backlog(waiting=450, **one_a_second)) == ALL
    # Nothing stored of late at the floor: every send waits.
    assert level(RULE, Backlog(waiting=16)) == ALL
