"""Several worker processes under one command (worker/processes.py): when a failed member is started again.

The pool's processes themselves are tested in tests/e2e/faults/test_worker_pool.py.
"""

from __future__ import annotations

from worker.processes import RESTART_DELAYS, restart_delay


def test_a_failing_pool_member_waits_longer_each_time_up_to_a_cap():
    delays = [restart_delay(n) for n in range(1, 9)]
    assert delays[0] == 1.0
    assert delays == sorted(delays)
    assert delays[-1] == delays[-2] == RESTART_DELAYS[-1] == 30.0
