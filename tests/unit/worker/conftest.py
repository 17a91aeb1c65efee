"""The worker's unit tests: each starts with no answer of an earlier test's look for ``rq suspend`` (the process's one
look, ``worker.inprocess.SUSPENSION``, outlives a test, as do its full cleanings' times), with work that may wait
in a line (``feeding.WORK_MAY_WAIT``, the process's too), and ends with no call for the tasks back
(``stopping.REQUESTED``: a test that stops lanes, or a whole worker, sets it for the tests' process, which goes on)."""

from __future__ import annotations

import pytest

from fluxhook.core import stopping
from worker.feeding import WORK_MAY_WAIT
from worker.inprocess import _FULL_CLEANING_DUE, SUSPENSION


@pytest.fixture(autouse=True)
def fresh_suspension_look():
    SUSPENSION.due = 0.0
    WORK_MAY_WAIT.set()
    _FULL_CLEANING_DUE.clear()
    yield
    SUSPENSION.due = 0.0
    WORK_MAY_WAIT.set()
    stopping.REQUESTED.clear()
