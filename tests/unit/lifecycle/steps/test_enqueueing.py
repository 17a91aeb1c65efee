"""How worker tasks are queued (fluxhook/lifecycle/steps/enqueueing.py): the download's retries against its URL's life
(fluxhook/media/fetch.py), its lock against its retries, and the downloads taken in the order their URLs expire."""

from __future__ import annotations

import random
import time

from fluxhook.core import job as st
from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.holds import CLAIM_LEASE, DOWNLOAD_LOCK_TTL, DOWNLOAD_TIMEOUT
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import (
    AHEAD,
    DOWNLOAD_RETRIES,
    DOWNLOAD_RETRY_CAP,
    download_line,
    download_lock,
    download_pending,
    download_task,
    download_task_name,
    draft_cache_task_name,
    ensure_download,
    feed,
    queue_handed,
    queued_download,
    task_live,
    task_name,
)
from fluxhook.media.fetch import IMAGE_URL_LIFE, VIDEO_URL_LIFE
from fluxhook.store.owners import ADMIN_OWNER, member
from fluxhook.store.work_lines import DOWNLOAD, DOWNLOAD_HOUR, DOWNLOAD_LONG, DRAFT_CACHE, KINDS
from helpers import commands_during


class _Low(random.Random):
    """Every jittered delay at its low end."""

    def uniform(self, a, b):
        return min(a, b)


class _High(random.Random):
    def uniform(self, a, b):
        return max(a, b)


def test_a_failing_download_is_retried_for_as_long_as_a_video_url_lives():
    shortest = sum(backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP, rng=_Low()))
    assert shortest >= VIDEO_URL_LIFE >= IMAGE_URL_LIFE


def test_the_download_lock_outlives_every_retry():
    longest = sum(backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP, rng=_High()))
    assert DOWNLOAD_LOCK_TTL > longest + DOWNLOAD_TIMEOUT  # and the last attempt's own timeout


def test_a_download_waits_in_the_line_of_its_urls_life():
    assert download_line("flux-2-pro") == DOWNLOAD  # 10 minutes
    assert download_line("flux-3-image") == DOWNLOAD_HOUR  # an hour
    assert download_line("flux-tools/video-edit-v1") == DOWNLOAD_HOUR  # a video whose URL lives an hour
    assert download_line("flux-3-video") == DOWNLOAD_LONG  # 2 hours
    assert download_line("flux-9-video-preview") == DOWNLOAD_LONG  # unknown: a video's name gets the longer life
    assert download_line(None) == DOWNLOAD_LONG


def _ready(svc, model: str, count: int, key_id: str | None = None) -> list[str]:
    """``count`` jobs of ``model`` turned ready, each download added as a Ready adds it (with its lock), and queued at
    once if its turn is now (``queue_handed``), as ``applying.accept_ready`` does."""
    ids = []
    for _ in range(count):
        now = time.time()
        job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.READY, model=model, pool="default",
                                     created_at=now, updated_at=now, key_id=key_id))
        assert svc.store.locks.acquire(*download_lock(svc.store.keys, job.id))
        queue_handed(svc, svc.store.effects.apply([download_task(job.id, model)]))
        ids.append(job.id)
    return ids


def _rq_full(svc) -> None:
    """RQ's queue holds AHEAD tasks: the workers are busy, so work waits in its line."""
    svc.redis.rpush(svc.queue.key, *[f"busy-{n}" for n in range(AHEAD)])


def _queued(svc) -> list[str]:
    """The RQ queue's tasks, each by what its id begins with (``download_task_name``): each id is its enqueue's own."""
    return [task_name(task) for task in svc.queue.get_job_ids()]


def test_a_download_with_no_work_waiting_goes_to_rq_at_once_charged_its_turn(make_services):
    svc = make_services(6)
    [first] = _ready(svc, "flux-2-pro", 1, key_id="key-a")

    # Queued by the step that added it: nothing in a line, no feeder woken.
    assert _queued(svc) == [download_task_name(first)]
    assert svc.store.work.waiting(DOWNLOAD) == 0 and not svc.redis.exists(svc.store.keys.work_added)
    # Its owner's turn is charged as the feeder's take would charge it (work_take.lua, 1 / weight).
    assert float(svc.redis.hget(svc.store.keys.work_passes(DOWNLOAD), "key-a")) == 1.0

    # Room for AHEAD tasks in RQ; the next waits in its line, and wakes a feeder.
    _ready(svc, "flux-2-pro", AHEAD - 1, key_id="key-a")
    [waiting] = _ready(svc, "flux-2-pro", 1, key_id="key-b")
    assert len(svc.queue.get_job_ids()) == AHEAD
    assert svc.store.work.pending(DOWNLOAD, "key-b", waiting) and svc.redis.exists(svc.store.keys.work_added)
    # RQ's queue has room again, but a line holds work: a new job's turn is not at once, it waits behind it.
    svc.queue.empty()
    [later] = _ready(svc, "flux-3-video", 1, key_id="key-a")
    assert svc.queue.get_job_ids() == [] and svc.store.work.waiting(DOWNLOAD_LONG) == 1
    assert feed(svc).moved == 2
    assert _queued(svc) == [download_task_name(waiting), download_task_name(later)]


def test_downloads_whose_urls_expire_first_go_to_rq_first_whatever_became_ready_first(make_services):
    svc = make_services(6)
    _rq_full(svc)
    video = _ready(svc, "flux-3-video", AHEAD)
    hour = _ready(svc, "flux-3-image", AHEAD)
    images = _ready(svc, "flux-2-pro", AHEAD)
    svc.queue.empty()

    assert feed(svc).moved == AHEAD  # room for AHEAD tasks in RQ: the 10-minute URLs take it all
    assert _queued(svc) == [download_task_name(job_id) for job_id in images]
    svc.queue.empty()
    assert feed(svc).moved == AHEAD
    assert _queued(svc) == [download_task_name(job_id) for job_id in hour]
    svc.queue.empty()
    assert feed(svc).moved == AHEAD
    assert _queued(svc) == [download_task_name(job_id) for job_id in video]


def test_a_download_taken_by_a_worker_killed_before_it_started_it_is_not_live(make_services):
    """RQ pops a task from its queue when a worker listens on several; killed before it starts the task, the
    task stays ``queued`` in no queue, and the sweep's repair must not take it for one that will run."""
    svc = make_services(6)
    [job_id] = _ready(svc, "flux-2-pro", 1)
    job = svc.jobs.get(job_id)
    # The job's download lock names the task queued (the sweep's repair looks at that one).
    [queued] = svc.queue.get_job_ids()
    assert queued_download(svc, job_id) == queued and task_name(queued) == download_task_name(job_id)
    assert task_live(svc, queued) and download_pending(svc, job)
    assert svc.redis.lpop(svc.queue.key).decode() == queued  # the killed worker's take
    assert not task_live(svc, queued) and not download_pending(svc, job)


def test_a_lock_an_older_release_took_or_none_names_that_release_s_one_id(make_services):
    svc = make_services(6)
    job_id, unlocked = new_job_id(), new_job_id()
    svc.redis.set(svc.store.keys.download_lock(job_id), "1")
    assert queued_download(svc, job_id) == download_task_name(job_id)
    assert queued_download(svc, unlocked) == download_task_name(unlocked)


def test_each_enqueue_has_an_id_of_its_own_and_only_a_held_download_lock_names_it(make_services):
    svc = make_services(6)
    job_id = new_job_id()
    # Twice the same job's draft cache, and a download queued with no lock held (the lock is not made).
    queue_handed(svc, {DRAFT_CACHE: [member(ADMIN_OWNER, job_id)]})
    queue_handed(svc, {DRAFT_CACHE: [member(ADMIN_OWNER, job_id)], DOWNLOAD: [member(ADMIN_OWNER, job_id)]})
    first, second, download = svc.queue.get_job_ids()
    assert first != second and task_name(first) == task_name(second) == draft_cache_task_name(job_id)
    assert task_name(download) == download_task_name(job_id) and not svc.redis.exists(svc.store.keys.download_lock(job_id))
    # The lock holds the id's own part: 8 bytes.
    assert svc.store.locks.acquire(*download_lock(svc.store.keys, job_id))
    queue_handed(svc, {DOWNLOAD: [member(ADMIN_OWNER, job_id)]})
    held = svc.redis.get(svc.store.keys.download_lock(job_id)).decode()
    assert len(held) == 8 and queued_download(svc, job_id) == svc.queue.get_job_ids()[-1]


def test_a_download_queued_again_while_rq_still_ends_the_last_one_keeps_its_record_until_a_lane_takes_it(make_services):
    # A download that gives its lock back in its own run (its URL expired: the job is asked again, and its next
    # Ready queues the next download at once) ends in RQ a moment later, by writing its task's record as ended,
    # to live one second (result_ttl). That must not be the next task's record.
    svc = make_services(6)
    [job_id] = _ready(svc, "flux-2-pro", 1)
    [first] = svc.queue.get_job_ids()
    ending = svc.queue.fetch_job(first)
    svc.redis.lpop(svc.queue.key)  # a lane took it; its run gives the lock back:
    svc.store.locks.release(svc.store.keys.download_lock(job_id))

    assert svc.store.locks.acquire(svc.store.keys.download_lock(job_id), "1", DOWNLOAD_LOCK_TTL)
    queue_handed(svc, svc.store.effects.apply([download_task(job_id, "flux-2-pro")]))
    ending.set_status("finished")  # RQ's end of the first, after the next was queued
    ending.cleanup(ttl=1)

    [second] = svc.queue.get_job_ids()
    assert second != first and svc.redis.ttl(svc.queue.fetch_job(second).key) == -1
    assert svc.queue.fetch_job(second).get_status() == "queued" and queued_download(svc, job_id) == second


def test_a_download_handed_at_once_is_queued_under_its_locks_own_part_with_no_relabel(
        make_services):
    svc = make_services(6)
    now = time.time()
    job_id = svc.jobs.create(Job(id=new_job_id(now), status=st.READY, model="flux-2-pro", pool="default",
                                 created_at=now, updated_at=now))[0].id
    lock = download_lock(svc.store.keys, job_id)
    assert svc.store.locks.acquire(*lock)
    handed = svc.store.effects.apply([download_task(job_id, "flux-2-pro")])
    sent = [c["command"] for c in commands_during(svc.redis, 6, lambda: queue_handed(svc, handed, lock.value))]
    [queued] = svc.queue.get_job_ids()
    assert queued == f"{download_task_name(job_id)}-{lock.value}" and queued_download(svc, job_id) == queued
    assert not [c for c in sent if c.startswith("SET ")]  # the lock names the task already
    assert svc.queue.fetch_job(queued).get_status() == "queued"


def test_a_check_queues_no_second_download_for_one_a_feed_took_from_the_line_since_its_claim(make_services):
    # Between a feed's take and the MULTI that queues its task, the download is in no line and no RQ queue, and its
    # lock names no task there: only the move's lease in the due index says it is on its way.
    svc = make_services(6)
    _rq_full(svc)
    [job_id] = _ready(svc, "flux-2-pro", 1)
    job = svc.jobs.get(job_id)
    now = time.time()
    svc.redis.zadd(svc.store.keys.due, {job_id: now - 1})  # its recheck due: the sweep claims it, its check confirms
    assert svc.jobs.claim_due(now, 10, now + CLAIM_LEASE) == [job_id]
    hold = now + 2 * CLAIM_LEASE
    assert svc.jobs.confirm_claim(job_id, now + CLAIM_LEASE, hold)
    svc.queue.empty()
    taken = svc.store.work.take(dict.fromkeys(KINDS, svc.queue.key), AHEAD, time.time())  # a feed, not queued yet
    assert taken.items == {DOWNLOAD: [f"{ADMIN_OWNER}:{job_id}"]}

    assert not ensure_download(svc, job, hold)

    queue_handed(svc, taken.items)  # the feed's MULTI
    assert _queued(svc) == [download_task_name(job_id)] and queued_download(svc, job_id) in svc.queue.get_job_ids()
