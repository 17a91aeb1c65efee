"""How worker tasks are queued (fluxhook/lifecycle/enqueueing.py): the download's retries against its URL's life
(fluxhook/media/lifetimes.py), and its lock against its retries."""

from __future__ import annotations

import random

from fluxhook.core.backoff import backoff_schedule
from fluxhook.lifecycle.enqueueing import (
    DOWNLOAD_LOCK_TTL,
    DOWNLOAD_RETRIES,
    DOWNLOAD_RETRY_CAP,
    DOWNLOAD_TIMEOUT,
)
from fluxhook.media import lifetimes


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


def test_submissions_are_tokens_taken_in_turn_across_keys(make_services):
    """With slots to spare, key A's many submissions do not hold key B's one behind them: each queued
    submission is a token of the submit line, and the first tokens to run take A's first and B's."""
    from fluxhook.core import transitions as st
    from fluxhook.core.job import Job, new_job_id
    from fluxhook.lifecycle.enqueueing import enqueue_submits
    from fluxhook.store.work_lines import SUBMIT

    svc = make_services(2)
    jobs = []
    for key_id in ["key_a"] * 20 + ["key_b"]:
        job = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro", key_id=key_id, input={"prompt": "x"})
        svc.jobs.create(job)
        jobs.append(job)
    enqueue_submits(svc, [job.id for job in jobs])

    assert svc.control_queue.count == len(jobs)  # one token each
    taken = [svc.store.work.take(SUBMIT, f"token-{n}") for n in range(2)]
    assert taken == [jobs[0].id, jobs[-1].id]
