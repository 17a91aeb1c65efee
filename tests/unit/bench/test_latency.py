"""bench-latency's reading of the slots (``bench.latency.slots_busy``): a flow that keeps every slot turning reads as
all busy and at the bound, one account's or two's, however the last turn is filled."""

from __future__ import annotations

import pytest

from bench.latency import slots_busy

SUBMIT, TASK = 1.0, 8.0


def _flow(jobs: int, slots: int) -> list[dict]:
    """Each slot sends its next job as its last task ends: turns of SUBMIT + TASK seconds."""
    records = []
    for n in range(jobs):
        start = (n // slots) * (SUBMIT + TASK) + (n % slots) * 0.001
        records.append({"submitted_at": start + SUBMIT, "finished_at": start + SUBMIT + TASK})
    return records


@pytest.mark.parametrize("jobs, slots", [(300, 24), (300, 48), (600, 48)])
def test_slots_turning_without_a_gap_read_all_busy_and_at_the_bound(jobs, slots):
    busy, rate = slots_busy(_flow(jobs, slots), SUBMIT, slots)

    assert busy == pytest.approx(1.0, abs=0.01)
    assert rate == pytest.approx(slots / (SUBMIT + TASK), rel=0.03)


def test_slots_left_idle_half_the_time_read_half_busy():
    records = [{"submitted_at": r["submitted_at"] * 2, "finished_at": r["submitted_at"] * 2 + TASK / 2}
               for r in _flow(300, 24)]
    busy, rate = slots_busy(records, SUBMIT, 24)
    assert busy < 0.6 and rate < 0.6 * 24 / (SUBMIT + TASK)
