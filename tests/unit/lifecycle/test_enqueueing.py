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
