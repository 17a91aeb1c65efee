"""The fault modules' stacks: each test a Redis of its own (AOF on) and the Procfile's processes (fault_helpers)."""

from __future__ import annotations

import pytest

# The helpers' asserts report as a test's own do (registered before their first import).
pytest.register_assert_rewrite("e2e.faults.fault_helpers")

from .fault_helpers import fault_stack  # noqa: E402


@pytest.fixture()
def faults(simulator, _spies, tmp_path):
    yield from fault_stack(simulator, _spies, tmp_path)


@pytest.fixture()
def pooled(simulator, _spies, tmp_path):
    """A FaultStack whose ``python -m worker`` runs two member worker processes (WORKER_PROCESSES=2)."""
    yield from fault_stack(simulator, _spies, tmp_path, WORKER_PROCESSES="2")
