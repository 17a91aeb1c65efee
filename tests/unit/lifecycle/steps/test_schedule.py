"""Pure-function tests of the fallback poll schedule (fluxhook/lifecycle/steps/schedule.py)."""

from __future__ import annotations

import random

import pytest

from fluxhook.core import live
from fluxhook.core.catalog import first_poll_at
from fluxhook.lifecycle.steps import schedule


@pytest.mark.parametrize("grace", [0, 2, 45, 600])
def test_intervals_grow_then_stay_at_the_unwatched_interval_within_the_jitter(grace):
    base = max(1.0, grace / 4)
    previous_ceiling = 0.0
    for polls in range(1, 30):
        ceiling = min(schedule.MAX_POLL_INTERVAL, base * schedule.GROWTH ** (polls - 1))
        assert ceiling >= previous_ceiling
        previous_ceiling = ceiling
        for seed in range(20):
            value = schedule.poll_interval(polls, grace, random.Random(seed))
            assert ceiling * 0.8 <= value <= ceiling * 1.2
    assert previous_ceiling == schedule.MAX_POLL_INTERVAL


def test_jitter_spreads_a_burst_of_jobs():
    values = {round(schedule.poll_interval(3, 45, random.Random(seed)), 3) for seed in range(50)}
    assert len(values) > 40


def test_no_poll_is_scheduled_past_the_deadline():
    submitted = 1000.0
    late = submitted + schedule.POLL_DEADLINE - 5
    assert schedule.next_poll_at(submitted, 40, now=late, grace=45) == submitted + schedule.POLL_DEADLINE


def test_timed_out_after_exactly_one_hour():
    assert not schedule.timed_out(0.0, schedule.POLL_DEADLINE - 0.001)
    assert schedule.timed_out(0.0, schedule.POLL_DEADLINE)


def test_rate_limited_poll_waits_at_least_retry_after():
    rng = random.Random(1)
    assert schedule.rate_limited_until(100.0, 30.0, 1, 2, rng) >= 130.0
    # A tiny Retry-After does not make the job poll faster than its schedule would.
    assert schedule.rate_limited_until(100.0, 0.0, 5, 45, rng) >= 100.0 + 0.8 * live.UNWATCHED_POLL_INTERVAL


def _polls_until_seen(completes_at: float, grace: float, rng: random.Random) -> tuple[int, float]:
    """How many polls the schedule makes before it sees a task that completes at ``completes_at``, and how long
    after its completion the poll that sees it comes."""
    polls, at = 0, first_poll_at(None, 0.0, grace)
    while True:
        polls += 1
        if at >= completes_at:
            return polls, at - completes_at
        at = schedule.next_poll_at(0.0, polls, at, grace, rng)


@pytest.mark.parametrize("grace", [2, 45])
def test_an_unwatched_running_jobs_state_is_polled_within_twelve_seconds(grace):
    # docs/api.md "Live": within 15 s unwatched. The schedule's share is at most 12 s (10 s, +20 % jitter); the
    # sweep's second and the check's run make the rest. Tasks of up to ten minutes, lost callbacks or progress.
    rng = random.Random(7)
    lags = [_polls_until_seen(t / 10, grace, rng)[1] for t in range(0, 6001)]
    assert max(lags) <= 12.0


def test_what_unwatched_polling_costs_per_task():
    # A poll about every 10 s while the task runs: tasks finishing uniformly over their first 2 minutes cost
    # about 6 polls when their callbacks are lost; a task done within the first poll's 10 s (most images, their
    # callback coming first) none (docs/api.md, "Live progress").
    rng = random.Random(7)
    counts = [_polls_until_seen(t / 10, 45, rng)[0] for t in range(0, 1201)]
    assert 5 <= sum(counts) / len(counts) <= 7
    assert max(counts) <= 14
    assert first_poll_at(None, 0.0, 45) >= 10.0


def test_a_watched_job_is_polled_at_the_watched_pace_unjittered():
    assert schedule.next_poll_at(0.0, 3, now=100.0, grace=45, rng=random.Random(1), watched=True) == \
        100.0 + live.WATCHED_POLL_DUE
    # Before its first poll too, and never past the deadline.
    assert schedule.next_poll_at(0.0, 0, now=0.5, grace=45, watched=True) == 0.5 + live.WATCHED_POLL_DUE
    assert schedule.next_poll_at(0.0, 9, now=schedule.POLL_DEADLINE - 0.1, grace=45, watched=True) == \
        schedule.POLL_DEADLINE
