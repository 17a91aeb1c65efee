"""The worker's cron thread (worker/cron.py): at rest it waits, costing Redis nothing, until the earliest retry RQ holds
is due or a lane says it scheduled one; it then moves the retries due back into their queues under RQ's scheduler's
locks (released after), and a stop ends its wait at once."""

from __future__ import annotations

import time
from datetime import timedelta

from rq import Queue

from devtools.processes import wait_until
from fluxhook.store.queues import retry_scheduled
from helpers import commands_during
from worker import cron, runtime


def test_a_retry_scheduled_for_later_moves_back_to_its_queue_once_due_and_the_cron_rests_meanwhile(make_services):
    svc = make_services(6)
    queue = Queue("cron-test", connection=svc.redis)
    wakes = runtime.wakes_for(svc.config)
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
