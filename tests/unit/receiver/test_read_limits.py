"""What a request of an app key counts against its read limit, decided in one place for every request
(receiver/read_limits.py): one unit for any request under /v1, more for a list's large page or a batch's results,
nothing for a submission (``requests_per_minute`` counts those) or outside /v1 (BFL's callbacks above all)."""

from __future__ import annotations

import pytest

from fluxhook.lifecycle.steps import key_limits
from receiver.read_limits import read_cost


@pytest.mark.parametrize("path, endpoint", [
    ("/v1/jobs/job_1", "jobs.show"), ("/v1/jobs/job_1/image", "jobs.image"), ("/v1/jobs/job_1/video", "media.video"),
    ("/v1/jobs/job_1/events", "events.job_events"), ("/v1/deliveries", "jobs.deliveries"), ("/v1/usage", "usage.index"),
    ("/v1/get_result", "bfl_compat.get_result"), ("/v1/nowhere", None), ("/v1/batches/b_1", "batches.show"),
    ("/v1/jobs/job_1/cancel", "jobs.cancel"),
])
def test_every_request_under_v1_counts_one(path, endpoint):
    assert read_cost(path, endpoint, {}) == 1


def test_a_page_counts_by_the_jobs_it_asks_for_and_a_batchs_results_as_the_largest_read():
    assert read_cost("/v1/jobs", "jobs.index", {}) == 1
    assert read_cost("/v1/jobs", "jobs.index", {"limit": "100"}) == 5
    assert read_cost("/v1/batches", "batches.index", {"limit": "41"}) == 3
    assert read_cost("/v1/jobs", "jobs.index", {"limit": "many"}) == 1  # malformed: it made the web work all the same
    assert read_cost("/v1/batches/b_1/results", "batches.results", {}) == key_limits.LARGEST_READ


@pytest.mark.parametrize("path, endpoint", [
    ("/v1/jobs", "jobs.create"), ("/v1/jobs/track", "jobs.track"), ("/v1/batches", "batches.create"),
    ("/v1/flux-2-pro", "bfl_compat.submit"), ("/webhooks/bfl", "webhooks.bfl"), ("/health", "health.health"),
    ("/", "dashboard.overview"),
])
def test_submissions_and_whatever_is_outside_v1_count_nothing(path, endpoint):
    assert read_cost(path, endpoint, {}) == 0
