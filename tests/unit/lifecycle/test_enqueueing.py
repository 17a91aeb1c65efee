"""How worker tasks are queued (fluxhook/tasks.py) and how long result URLs live (fluxhook/media/lifetimes.py):
the download's retries against its URL's life."""

from __future__ import annotations

import random

import pytest

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


@pytest.mark.parametrize("model, life", [
    ("flux-2-pro", 600), ("flux-kontext-max", 600), ("flux-3-video", 7200), ("flux-3-video-preview", 7200),
    (None, 7200),
])
def test_each_url_has_its_own_life(model, life):
    assert lifetimes.url_life(model) == life
    assert not lifetimes.past_life(model, 1000.0, 1000.0 + life)
    assert lifetimes.past_life(model, 1000.0, 1000.0 + life + 1)
    assert not lifetimes.past_life(model, None, 10**12)
