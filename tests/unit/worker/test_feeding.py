"""The worker's feeding (``worker/feeding.py``): a lane that takes a task feeds RQ from the work lines only while the
process's last feed found work in one (``worker.run.download_taken``); the dispatcher's feed, woken by work added, is
what finds it again, and after a feed cut by a lost Redis it feeds again before it rests."""

from __future__ import annotations

import time

import redis

from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import AHEAD, download_task, download_task_name, queue_handed, task_name
from fluxhook.store.wakes import Wakes
from fluxhook.store.work_lines import DOWNLOAD
from helpers import commands_during
from worker import dispatcher, feeding, run


def _ready(svc) -> str:
    """A job turned ready, its download added as a Ready adds it (queued at once if its turn is now)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.READY, model="flux-2-pro", pool="default",
                                 created_at=now, updated_at=now, key_id="key-a"))
    queue_handed(svc, svc.store.effects.apply([download_task(job.id, job.model)]))
    return job.id


def _sent(svc, action) -> list[str]:
    db = svc.redis.connection_pool.connection_kwargs["db"]
    return [c["command"] for c in commands_during(svc.redis, db, action) if not c["command"].startswith("SELECT")]


def test_a_lane_feeds_at_a_task_s_end_only_while_a_line_may_hold_work(make_services):
    svc = make_services(7)
    assert feeding.WORK_MAY_WAIT.is_set()  # before the first feed: may
    assert feeding.feed_noted(svc) == 0 and not feeding.WORK_MAY_WAIT.is_set()  # every line empty
    # A task ends: no feed, so nothing is sent to Redis (a feed of empty lines is two commands).
    assert _sent(svc, lambda: run.download_taken(svc)) == []

    # RQ's queue full: the next download waits in its line, and wakes a feeder, whose feed finds it.
    svc.redis.rpush(svc.queue.key, *[f"busy-{n}" for n in range(AHEAD)])
    waiting = _ready(svc)
    assert svc.store.work.waiting(DOWNLOAD) == 1
    assert feeding.feed_noted(svc) == 0 and feeding.WORK_MAY_WAIT.is_set()  # no room yet, but work waits
    # A task ends and RQ has room: the lane's feed moves the download.
    svc.redis.lpop(svc.queue.key)
    run.download_taken(svc)
    assert svc.store.work.waiting(DOWNLOAD) == 0
    assert download_task_name(waiting) in [task_name(task) for task in svc.queue.get_job_ids()]
    # Its lines were found holding work: the next end feeds once more, finds none, and the one after sends nothing.
    assert _sent(svc, lambda: run.download_taken(svc)) != [] and not feeding.WORK_MAY_WAIT.is_set()
    assert _sent(svc, lambda: run.download_taken(svc)) == []


def test_a_feed_that_found_no_work_does_not_hide_work_another_feed_found_meanwhile(make_services, monkeypatch):
    svc = make_services(7)
    fed = []

    def lane_feed_then_the_feeder_s(real):
        def feed(svc_):
            answer = real(svc_)  # the lane's take: every line empty
            if not fed:
                fed.append(1)
                svc.redis.rpush(svc.queue.key, *[f"busy-{n}" for n in range(AHEAD)])
                _ready(svc)  # work joins a line, and the feeder's feed, ending first, finds it
                assert feeding.feed_noted(svc) == 0 and feeding.WORK_MAY_WAIT.is_set()
            return answer
        return feed

    monkeypatch.setattr(feeding, "feed", lane_feed_then_the_feeder_s(feeding.feed))
    assert feeding.feed_noted(svc) == 0
    assert feeding.WORK_MAY_WAIT.is_set()  # the lane's late answer ("none") does not clear what the feeder found


def test_a_dispatcher_whose_feed_lost_redis_feeds_again_before_it_rests(make_services, monkeypatch):
    svc = make_services(7)
    svc.redis.rpush(svc.queue.key, *[f"busy-{n}" for n in range(AHEAD)])
    waiting = _ready(svc)  # waits in its line, its wake-up pushed
    svc.redis.delete(svc.queue.key)  # room in RQ, announced by nothing
    real, cut = feeding.feed, []

    def feed_once_cut(svc_):
        if not cut:
            cut.append(1)  # the wake-up is taken, and the feed it woke loses Redis (a failover)
            raise redis.ConnectionError("primary gone")
        return real(svc_)

    monkeypatch.setattr(feeding, "feed", feed_once_cut)
    feeding.WORK_MAY_WAIT.clear()  # as after a rest: its next wait would last until the guard's look
    url = svc.redis.connection_pool.connection_kwargs
    wakes = Wakes(redis.Redis(host=url["host"], port=url["port"], db=url["db"]))
    feeder = dispatcher.Dispatcher(wakes, [feeding.Feeds(svc)]).started()
    try:
        wait_until(lambda: download_task_name(waiting) in [task_name(t) for t in svc.queue.get_job_ids()], timeout=10,
                   message="the download fed after the lost feed")
        assert cut == [1] and svc.store.work.waiting(DOWNLOAD) == 0
    finally:
        feeder.request_stop()
        feeder.wakes.stop(1)
        feeder.stop()
