"""A draft cache's URL life (fluxhook/lifecycle/draft_caches.py): it runs from its renewal, and the wait for it ends."""

from __future__ import annotations

from fluxhook.core.job import Job
from fluxhook.lifecycle import draft_caches
from fluxhook.media import lifetimes


def test_a_draft_urls_life_runs_from_its_renewal_and_the_wait_for_it_ends():
    finished = 1_000_000.0
    job = Job(id="job_x", status="stored", finished_at=finished, draft_cache_source="https://d/x")
    life = lifetimes.VIDEO_URL_LIFE
    assert not draft_caches.past_life(job, finished + life - 1)
    assert draft_caches.past_life(job, finished + life + 1)
    renewed = Job(id="job_x", status="stored", finished_at=finished, draft_cache_source="https://d/y",
                  draft_cache_since=finished + life)
    assert not draft_caches.past_life(renewed, finished + life + 1)
    # /draft_cache answers 404 while the task may still bring it, 410 once even its last retries are over.
    assert draft_caches.still_coming(job, finished + life + draft_caches.GRACE - 1)
    assert not draft_caches.still_coming(job, finished + life + draft_caches.GRACE + 1)
    assert not draft_caches.still_coming(Job(id="job_x", status="stored", finished_at=finished), finished)
