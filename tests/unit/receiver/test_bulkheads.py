"""Bulkheads in the web process (receiver/bulkheads.py): work permits go to requests in the order they came. That a
BFL that hangs never takes the capacity that callbacks and reads need: tests/e2e/faults/test_bulkheads.py."""

from __future__ import annotations

import threading

from devtools.processes import wait_until
from receiver.bulkheads import WorkPermits


def test_work_permits_go_to_requests_in_the_order_they_came():
    permits, order = WorkPermits(1), []
    permits.acquire()

    def worker(n: int):
        permits.acquire()
        order.append(n)
        permits.release()

    threads = []
    for n in range(5):
        threads.append(threading.Thread(target=worker, args=(n,)))
        threads[-1].start()
        wait_until(lambda n=n: len(permits._line) == n + 1, timeout=5, message=f"request {n} in line")
    assert order == []
    permits.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]
