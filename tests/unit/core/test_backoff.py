"""Retry delays: exponential backoff with half jitter, and BFL's Retry-After header (fluxhook/core/backoff.py)."""

from __future__ import annotations

import random

import pytest

from fluxhook.core.backoff import backoff_delay, backoff_schedule, retry_after_seconds


def test_backoff_delays_stay_within_half_jitter_bounds():
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = backoff_delay(attempt, rng=rng)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_delays_grow_until_the_cap():
    rng = random.Random(7)
    schedule = backoff_schedule(10, base=1.0, cap=1000.0, rng=rng)
    assert len(schedule) == 10
    # with half jitter, retry n+2 is always longer than retry n (its floor is the other's ceiling)
    for earlier, later in zip(schedule, schedule[2:], strict=False):
        assert later >= earlier
    assert schedule[-1] >= 256  # 2**9 / 2


@pytest.mark.parametrize("cap", [0.5, 5.0, 60.0])
def test_backoff_respects_the_cap(cap):
    rng = random.Random(3)
    for attempt in range(1, 40):
        delay = backoff_delay(attempt, base=2.0, cap=cap, rng=rng)
        assert delay <= cap
        if 2.0 * 2 ** (attempt - 1) >= cap:
            assert delay >= cap / 2


def test_backoff_large_attempt_is_capped_and_finite():
    delay = backoff_delay(500, base=1.0, cap=60.0, rng=random.Random(0))
    assert 30.0 <= delay <= 60.0


def test_backoff_is_deterministic_with_a_seeded_rng():
    a = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(42))
    b = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(42))
    c = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(43))
    assert a == b
    assert a != c


def test_backoff_jitter_spreads_values():
    rng = random.Random(5)
    values = {backoff_delay(6, rng=rng) for _ in range(50)}
    assert len(values) > 40


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_attempt_counts_from_one(attempt):
    with pytest.raises(ValueError):
        backoff_delay(attempt)


def test_backoff_schedule_of_zero_retries_is_empty():
    assert backoff_schedule(0) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("2.5", 2.5),
        ("300", 300.0),
        ("301", 300.0),
        ("86400", 300.0),
        ("-5", 0.0),
    ],
)
def test_retry_after_seconds_numbers(header, expected):
    assert retry_after_seconds(header, 7.0) == expected


def test_retry_after_seconds_custom_cap():
    assert retry_after_seconds("100", 7.0, cap=10.0) == 10.0
    assert retry_after_seconds(None, 50.0, cap=10.0) == 10.0


@pytest.mark.parametrize(
    "header",
    [None, "", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 2099 23:59:59 GMT", "5s", "1,000", "nan"],
)
def test_retry_after_seconds_falls_back_on_dates_and_garbage(header):
    assert retry_after_seconds(header, 7.0) == 7.0
