"""The cancel and deadline tests' simulator: answering after about a second, as BFL does."""

from __future__ import annotations

import pytest


@pytest.fixture()
def slow_sim(sim):
    """The simulator with its tasks taking about a second (a prompt's ``[seconds-N]`` or ``[pending]`` overrides)."""
    sim.settings(task_delay=1.0)
    return sim
