"""The worker's wake-up guard (worker/guarding.py): work whose wake-up was lost (never pushed, as a process of an older
release adds work, gone with a primary that failed over, or taken by a process killed as it took it) costs a waiter at
rest at most the guard: it is taken within the guard and a second."""

from __future__ import annotations

import threading
import time

import redis

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import download_task_name, task_name
from fluxhook.store.owners import member, owner_of
from fluxhook.store.wakes import Wakes
from fluxhook.store.work_lines import DOWNLOAD
from helpers import tracked_job
from worker import dispatcher, feeding, guarding, sending, sweeping

GUARD = 2.0


def _wakes(svc) -> Wakes:
    url = svc.redis.connection_pool.connection_kwargs
    return Wakes(redis.Redis(host=url["host"], port=url["port"], db=url["db"]))


def test_a_download_whose_wake_up_was_lost_goes_to_rq_within_the_guard(make_services):
    svc = make_services(7)
    wakes = _wakes(svc)
    feeding.WORK_MAY_WAIT.clear()  # as at rest: every line found empty
    feeder = dispatcher.Dispatcher(wakes, [feeding.Feeds(svc)]).started()
    guard = guarding.Guard(wakes, GUARD).started()
    try:
        wait_until(lambda: wakes._resting, timeout=5, message="the dispatcher's feeds to rest")
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
        feeder.request_stop()
        wakes.stop(1)
        feeder.stop()


def test_a_due_job_whose_wake_up_was_lost_is_claimed_by_a_resting_sweeper_within_the_guard(make_services):
    svc = make_services(6)
    job = tracked_job(svc, "task-due-unannounced", due=time.time() - 1)
    due = svc.redis.zscore(svc.store.keys.due, job.id)
    svc.redis.zrem(svc.store.keys.due, job.id)  # the indexes empty: the sweeper rests
    svc.redis.delete(svc.store.keys.sweep_added)
    wakes = _wakes(svc)
    sweeper = sweeping.Sweeper(svc, wakes).started()
    guard = guarding.Guard(wakes, GUARD).started()
    try:
        wait_until(lambda: wakes._resting, timeout=5, message="the sweeper to rest")
        # Made due with no wake-up, as an older release's process or a primary that failed over leaves it.
        svc.redis.zadd(svc.store.keys.due, {job.id: due})
        added = time.monotonic()
        wait_until(lambda: svc.store.checks.waiting() == 1, timeout=GUARD + 5, message="the sweep to claim the job")
        assert time.monotonic() - added <= GUARD + 1.0
    finally:
        guard.stop()
        sweeper.request_stop()
        wakes.stop(1)
        sweeper.stop()


def test_a_queued_job_whose_wake_up_a_dying_process_took_is_sent_by_a_resting_dispatcher_within_the_guard(
        make_services, sim):
    sim.settings(submit_delay=0.0, task_delay=None)
    svc = make_services(6, BFL_MAX_ACTIVE="4")
    thief = _wakes(svc)  # a process's waiter blocked first: the one pushed wake-up is its
    taken: list[str] = []
    stealing = threading.Thread(target=lambda: taken.append(thief.wait(svc.store.keys.slot_freed, 30)), daemon=True)
    stealing.start()
    wait_until(lambda: svc.redis.info("clients")["blocked_clients"] >= 1, timeout=5, message="the thief to block")
    wakes = _wakes(svc)
    senders = dispatcher.Dispatcher(wakes, [sending.Sends(svc, 2)]).started()
    guard = guarding.Guard(wakes, GUARD).started()
    try:
        wait_until(lambda: wakes._resting, timeout=5, message="the dispatcher to rest")
        job = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro", pool="default", created_at=time.time(),
                  updated_at=time.time(), input={"prompt": "[pending] its wake-up taken by a process that died"})
        svc.jobs.create(job)
        assert not svc.slots.acquire(job, send_here=False)  # in line, its wake-up pushed
        added = time.monotonic()
        stealing.join(5)
        assert taken == ["work"]  # ... and taken by the process that then died
        wait_until(lambda: svc.jobs.get(job.id).status == st.SUBMITTED, timeout=GUARD + 5,
                   message="the job sent once the guard looked")
        assert time.monotonic() - added <= GUARD + 1.0
    finally:
        guard.stop()
        senders.request_stop()
        wakes.stop(1)
        senders.stop()
