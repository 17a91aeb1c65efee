"""How worker tasks are queued (fluxhook/tasks.py): the download's retries against its URL's life."""

from __future__ import annotations

import random

from fluxhook.backoff import backoff_schedule
from fluxhook.tasks import DOWNLOAD_LOCK_TTL, DOWNLOAD_RETRIES, DOWNLOAD_RETRY_CAP, IMAGE_URL_LIFE


class _Low(random.Random):
    """Every jittered delay at its low end."""

    def uniform(self, a, b):
        return min(a, b)


class _High(random.Random):
    def uniform(self, a, b):
        return max(a, b)


def test_a_failing_download_is_retried_for_as_long_as_its_url_lives():
    shortest = sum(backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP, rng=_Low()))
    assert shortest >= IMAGE_URL_LIFE


def test_the_download_lock_outlives_every_retry():
    longest = sum(backoff_schedule(DOWNLOAD_RETRIES, base=2, cap=DOWNLOAD_RETRY_CAP, rng=_High()))
    assert DOWNLOAD_LOCK_TTL > longest + 180  # and the last attempt's own timeout
