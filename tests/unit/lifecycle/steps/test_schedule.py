"""Pure-function tests of the fallback poll schedule (fluxhook/lifecycle/steps/schedule.py)."""

from __future__ import annotations

import random

import pytest

from fluxhook.lifecycle.steps import schedule


def test_first_poll_comes_exactly_one_grace_period_after_submission():
    assert schedule.next_poll_at(1000.0, 0, now=1000.0, grace=45) == 1045.0
    assert schedule.first_poll_at(1000.0, 45) == 1045.0


@pytest.mark.parametrize("grace", [0, 2, 45, 600])
def test_intervals_grow_then_stay_at_a_minute_within_the_jitter(grace):
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
    assert schedule.rate_limited_until(100.0, 0.0, 5, 45, rng) >= 100.0 + 0.8 * 45 / 4 * 1.5 ** 4


def _polls_until_seen(completes_at: float, grace: float, rng: random.Random) -> int:
    """How many polls the schedule makes before it sees a task that completes at ``completes_at``."""
    polls, at = 0, schedule.first_poll_at(0.0, grace)
    while True:
        polls += 1
        if at >= completes_at:
            return polls
        at = schedule.next_poll_at(0.0, polls, at, grace, rng)


def test_lost_callback_jobs_finishing_within_two_minutes_average_under_four_polls():
    # The target, from the default 45 s grace: tasks finishing uniformly over their first 2 minutes.
    rng = random.Random(7)
    counts = [_polls_until_seen(t / 10, 45, rng) for t in range(0, 1201)]
    assert sum(counts) / len(counts) < 4
    assert max(counts) <= 6
