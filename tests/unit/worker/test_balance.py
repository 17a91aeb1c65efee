"""The worker's balance thread (worker/balance.py): it reads each account's credits from BFL by itself, no RQ task in
between, one process per interval whichever run, again a few seconds after an account's jobs end, and stops at once
when told to; at rest it looks only when its process works. What a refresh and a look do: tests/unit/credits/test_balance.py."""

from __future__ import annotations

import time

from devtools.processes import wait_until
from fluxhook.credits.balance import LOOK_EVERY, QUIET
from fluxhook.store.effects import AccountJobEnded
from helpers import run_older_releases_task
from worker import balance
from worker.loops import ACTIVITY


def test_the_balance_thread_reads_the_credits_once_per_interval_however_many_processes_look(make_services, sim):
    svc = make_services(6)
    readers = [balance.BalanceReader(svc).started(), balance.BalanceReader(svc).started()]  # two processes' threads
    try:
        wait_until(lambda: svc.store.usage.balances([svc.config.accounts[0]])[0] is not None, timeout=5,
                   message="a balance thread to read the account's credits")
        time.sleep(0.5)  # both threads have looked by now: the second found the interval's lock held
    finally:
        started = time.monotonic()
        for reader in readers:
            reader.stop()
        assert not any(reader.is_alive() for reader in readers) and time.monotonic() - started < 1.0
    assert sim.stats()["credits_requests"] == 1
    # The refresh is no task of RQ's: nothing was queued for it.
    assert svc.queue.count == 0 and svc.store.checks.waiting() == 0


def test_the_balance_thread_reads_the_credits_again_a_few_seconds_after_jobs_end_not_an_interval_later(
        make_services, own_sim):
    svc = make_services(6, BFL_API_BASE=own_sim.url, API_HOST_ALLOWLIST=own_sim.url.removeprefix("http://"))
    account = svc.config.accounts[0]
    own_sim.settings(credits=500.0)
    reader = balance.BalanceReader(svc).started()
    try:
        wait_until(lambda: svc.store.usage.balances([account])[0] is not None, timeout=5,
                   message="the balance thread's first reading")
        own_sim.settings(credits=493.0)  # a job's price
        ended = time.time()
        svc.store.effects.apply([AccountJobEnded("default", ended)])  # its end's mark (accounting.on_end)
        ACTIVITY.noted()  # by the lane whose task ended it: a reader at rest looks again at once
        read = wait_until(lambda: (lambda b: b if b.credits == 493.0 else None)(svc.store.usage.balances([account])[0]),
                          timeout=QUIET + LOOK_EVERY + 3, interval=0.1, message="the balance read again after the end")
        assert read.at - ended >= QUIET - 0.5  # once the end was quiet, not at once
    finally:
        reader.stop()
    assert own_sim.stats()["credits_requests"] == 2  # the first reading, and one after the end


def test_an_older_releases_balance_task_queued_before_a_rolling_deploy_ends_without_failing(make_services):
    svc = make_services(6)
    run_older_releases_task(svc.queue, "worker.balance.refresh_balance")
