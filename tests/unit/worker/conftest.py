"""The worker's unit tests: each starts with no answer of an earlier test's look for ``rq suspend`` (the process's one
look, ``worker.inprocess.SUSPENSION``, outlives a test)."""

from __future__ import annotations

import pytest

from worker.inprocess import SUSPENSION


@pytest.fixture(autouse=True)
def fresh_suspension_look():
    SUSPENSION.due = 0.0
    yield
    SUSPENSION.due = 0.0
