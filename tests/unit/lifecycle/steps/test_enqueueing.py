"""How worker tasks are queued (fluxhook/lifecycle/steps/enqueueing.py): the download's retries against its URL's life
(fluxhook/media/lifetimes.py), its lock against its retries, and the downloads taken in the order their URLs expire."""

from __future__ import annotations

import random
import time

from fluxhook.core import transitions as st
from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import (
    AHEAD,
    DOWNLOAD_LOCK_TTL,
    DOWNLOAD_RETRIES,
    DOWNLOAD_RETRY_CAP,
    DOWNLOAD_TIMEOUT,
    download_line,
    download_task,
    download_task_id,
    feed,
    task_live,
)
from fluxhook.media import lifetimes
from fluxhook.store.work_lines import DOWNLOAD, DOWNLOAD_HOUR, DOWNLOAD_LONG


class _Low(random.Random):
    """Every jittered delay at its low end."""

    def uniform(self, a, b):
        return min(a, b)


class _High(random.Random):
    def uniform(self, a, b):
        return max(a, b)


def test_a_failing_download_is_retried_for_as_long_as_a_video_url_lives():
    shortest = sum(backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP, rng=_Low()))
    assert shortest >= lifetimes.VIDEO_URL_LIFE >= lifetimes.IMAGE_URL_LIFE


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


def _ready(svc, model: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        now = time.time()
        job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.READY, model=model, pool="default",
                                     created_at=now, updated_at=now))
        svc.store.effects.apply([download_task(job.id, model)])
        ids.append(job.id)
    return ids


def test_downloads_whose_urls_expire_first_go_to_rq_first_whatever_became_ready_first(make_services):
    svc = make_services(6)
    video = _ready(svc, "flux-3-video", AHEAD)
    hour = _ready(svc, "flux-3-image", AHEAD)
    images = _ready(svc, "flux-2-pro", AHEAD)

    assert feed(svc) == AHEAD  # room for AHEAD tasks in RQ: the 10-minute URLs take it all
    assert svc.queue.get_job_ids() == [download_task_id(job_id) for job_id in images]
    svc.queue.empty()
    assert feed(svc) == AHEAD
    assert svc.queue.get_job_ids() == [download_task_id(job_id) for job_id in hour]
    svc.queue.empty()
    assert feed(svc) == AHEAD
    assert svc.queue.get_job_ids() == [download_task_id(job_id) for job_id in video]


def test_a_download_taken_by_a_worker_killed_before_it_started_it_is_not_live(make_services):
    """RQ pops a task from its queue when a worker listens on several; killed before it starts the task, the
    task stays ``queued`` in no queue, and the sweep's repair must not take it for one that will run."""
    svc = make_services(6)
    [job_id] = _ready(svc, "flux-2-pro", 1)
    assert feed(svc) == 1
    assert task_live(svc, download_task_id(job_id))
    assert svc.redis.lpop(svc.queue.key).decode() == download_task_id(job_id)  # the killed worker's take
    assert not task_live(svc, download_task_id(job_id))
