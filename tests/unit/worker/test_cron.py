"""The worker's cron thread (worker/cron.py): at rest it waits, costing Redis nothing, until the earliest retry RQ holds
is due or a lane says it scheduled one; it then moves the retries due back into their queues under RQ's scheduler's
locks (released after), and a stop ends its wait at once; a wait cut by a lost Redis (a failover) leaves it running."""

from __future__ import annotations

import time
from datetime import timedelta

import redis
from rq import Queue

from devtools.processes import wait_until
from fluxhook.store.queues import retry_scheduled
from helpers import commands_during
from worker import cron, run


def test_a_retry_scheduled_for_later_moves_back_to_its_queue_once_due_and_the_cron_rests_meanwhile(make_services):
    svc = make_services(6)
    queue = Queue("cron-test", connection=svc.redis)
    wakes = run.wakes_for(svc.config)
    thread = cron.start(svc.config, svc.redis, [queue.name], wakes)
    try:
        time.sleep(0.5)  # its first step: the cron's registration, its first look (no retry held)
        sent = commands_during(svc.redis, 6, lambda: time.sleep(1.5))
        assert [c["command"] for c in sent if not c["command"].startswith("SELECT")] == []

        task = queue.enqueue_in(timedelta(seconds=2), "time.time")
        due = time.time() + 2
        retry_scheduled(svc.redis)  # as a lane does when RQ schedules a retry
        wait_until(lambda: task.id in queue.get_job_ids(), timeout=5, message="the retry back in its queue")
        assert time.time() - due < 1.5  # RQ's whole-second clock, and no look each second
        assert not svc.redis.keys("rq:scheduler-lock:*")  # its locks released once the retries moved
    finally:
        started = time.monotonic()
        thread.request_stop()
        wakes.stop(1)  # as its process's stop does (worker.run)
        thread.stop()
        assert not thread.is_alive() and time.monotonic() - started < 1.0


def test_a_wait_cut_by_a_lost_redis_leaves_the_cron_running_and_it_moves_the_retry_held(make_services, monkeypatch):
    svc = make_services(6)
    queue = Queue("cron-test", connection=svc.redis)
    wakes = run.wakes_for(svc.config)
    real, cut = wakes.wait, []

    def wait_cut_once(key, timeout, watched=None):
        if not cut:
            cut.append(1)
            raise redis.ConnectionError("primary gone")  # as a failover's SIGKILL of the primary ends a BLPOP
        return real(key, timeout, watched)

    monkeypatch.setattr(wakes, "wait", wait_cut_once)
    thread = cron.start(svc.config, svc.redis, [queue.name], wakes)
    try:
        # A retry scheduled while the wait was cut, its wake-up gone with the old primary: the cron reads it again.
        task = queue.enqueue_in(timedelta(seconds=1), "time.time")
        wait_until(lambda: task.id in queue.get_job_ids(), timeout=10, message="the retry back in its queue")
        assert cut == [1] and thread.is_alive()
    finally:
        thread.request_stop()
        wakes.stop(1)
        thread.stop()
