"""The worker's wake-up guard (worker/guarding.py): work whose wake-up was lost (never pushed, as a process of an older
release adds work, or gone with a primary that failed over) costs a waiter at rest at most the guard: it is taken within
the guard and a second."""

from __future__ import annotations

import time

import redis

from devtools.processes import wait_until
from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import download_task_name, task_name
from fluxhook.store.owners import member, owner_of
from fluxhook.store.wakes import Wakes
from fluxhook.store.work_lines import DOWNLOAD
from worker import feeding, guarding

GUARD = 2.0


def test_a_download_whose_wake_up_was_lost_goes_to_rq_within_the_guard(make_services):
    svc = make_services(7)
    url = svc.redis.connection_pool.connection_kwargs
    wakes = Wakes(redis.Redis(host=url["host"], port=url["port"], db=url["db"]))
    feeding.WORK_MAY_WAIT.clear()  # as at rest: every line found empty
    feeder = feeding.Feeder(svc, wakes)
    feeder._moved = False
    feeder.start()
    guard = guarding.start(wakes, GUARD)
    try:
        wait_until(lambda: wakes._resting, timeout=5, message="the feeder to rest")
        now = time.time()
        job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.READY, model="flux-2-pro", pool="default",
                                     created_at=now, updated_at=now, key_id="key-a"))
        # Its download put in line with no wake-up, as a process of an older release (or a lost primary) leaves it.
        svc.redis.zadd(svc.store.keys.work_line(DOWNLOAD), {member(owner_of("key-a"), job.id): 0})
        added = time.monotonic()
        wait_until(lambda: download_task_name(job.id) in [task_name(t) for t in svc.queue.get_job_ids()],
                   timeout=GUARD + 5, message="the download fed once the guard looked")
        assert time.monotonic() - added <= GUARD + 1.0
        assert svc.store.work.waiting(DOWNLOAD) == 0
    finally:
        guard.stop()
        wakes.stop(1)
        feeder.stop()
