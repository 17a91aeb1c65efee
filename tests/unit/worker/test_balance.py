"""The worker's balance thread (worker/balance.py): it reads each account's credits from BFL by itself, no RQ task in
between, one process per interval whichever run, and stops at once when told to. What a refresh does:
tests/unit/credits/test_balance.py."""

from __future__ import annotations

import time

from devtools.processes import wait_until
from helpers import run_older_releases_task
from worker import balance


def test_the_balance_thread_reads_the_credits_once_per_interval_however_many_processes_look(make_services, sim):
    svc = make_services(6)
    readers = [balance.start(svc), balance.start(svc)]  # two processes' threads
    try:
        wait_until(lambda: svc.store.usage.balance(account="default") is not None, timeout=5,
                   message="a balance thread to read the account's credits")
        time.sleep(0.5)  # both threads have looked by now: the second found the interval's lock held
    finally:
        started = time.monotonic()
        for reader in readers:
            reader.stop()
        assert not any(reader.is_alive() for reader in readers) and time.monotonic() - started < 1.0
    assert sim.stats()["credits_requests"] == 1
    # The refresh is no task of RQ's: nothing was queued for it.
    assert svc.queue.count == 0 and svc.control_queue.count == 0


def test_an_older_releases_balance_task_queued_before_a_rolling_deploy_ends_without_failing(make_services):
    svc = make_services(6)
    run_older_releases_task(svc.queue, "worker.balance.refresh_balance")
