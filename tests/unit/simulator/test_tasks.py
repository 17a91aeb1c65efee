"""The simulator's prompt markers (simulator/tasks.py; pure)."""

from __future__ import annotations

from simulator.tasks import parse_seconds


def test_a_seconds_marker_sets_the_task_length_and_a_malformed_one_is_ignored():
    assert parse_seconds("a long one [seconds-30]") == 30.0
    assert parse_seconds("[SECONDS-0.25] short") == 0.25
    assert parse_seconds("[seconds-5] then [seconds-2]") == 2.0  # the last one counts
    assert parse_seconds("no marker") is None
    for malformed in ("[seconds-]", "[seconds--1]", "[seconds-1e3]", "[seconds-.5]", "seconds-3"):
        assert parse_seconds(malformed) is None, malformed
