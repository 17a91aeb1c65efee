"""The lanes' stop (worker/lanes.py): each task still in hand when the grace ends is handed back to RQ, one line
saying so for each, and lanes stuck where the hand-back's exception cannot reach them (a blocking read) are
waited for together, not one after another: a pool's member must stop inside its supervisor's STOP_TIMEOUT."""

from __future__ import annotations

import logging
import threading
import time

from rq import Queue, Retry
from rq.job import JobStatus

from devtools.processes import wait_until
from worker import lanes
from worker.processes import STOP_TIMEOUT

# Released at the end of the test: until then a task waits on it as a download waits on a socket, in C, where
# the hand-back's exception is not raised until the wait ends.
_gate = threading.Lock()


def stuck() -> None:
    """A task that blocks in C until the test releases the gate."""
    with _gate:
        pass


def test_tasks_stuck_in_a_read_are_handed_back_and_the_lanes_stop_within_the_grace_and_one_wait(make_services,
                                                                                                caplog):
    svc = make_services(7)
    queue = Queue("lanes-stop-test", connection=svc.redis)
    running = lanes.start(svc.redis, [queue], "WARNING", after_task=lambda: None, count=lanes.LANES)
    _gate.acquire()
    try:
        tasks = [queue.enqueue(stuck, retry=Retry(max=1, interval=60)) for _ in range(lanes.LANES)]
        wait_until(lambda: all(lane.busy for lane in running), timeout=20, message="every lane at a task")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="fluxhook.worker"):
            lanes.stop(running, hand_back_after=0.2, cold=lambda: False)
        took = time.monotonic() - started

        # Before: 0.2 + HAND_BACK_GRACE + 2 s for each stuck lane (10.2 s), past a member's share of STOP_TIMEOUT.
        assert took < 0.2 + lanes.HAND_BACK_GRACE + lanes.DEQUEUE_TIMEOUT + 1.0 + 1.0, took
        assert took + 10 < STOP_TIMEOUT  # the grace (run.IMMINENT_SHUTDOWN_DELAY) and this fit the supervisor's wait
        announced = [r for r in caplog.records if r.getMessage().startswith("task in hand handed back")]
        assert sorted(r.task for r in announced) == sorted(t.id for t in tasks)
        # Each goes back through RQ's own path: failed with a retry left, so it is scheduled to run again.
        assert {t.get_status(refresh=True) for t in tasks} == {JobStatus.SCHEDULED}
    finally:
        _gate.release()
