"""A draft cache's storage key (fluxhook/media/draft_caches.py): one per job, beside its video and never its
video's. Fetching and keeping one: tests/unit/lifecycle/test_draft_caches.py."""

from __future__ import annotations

from fluxhook.core.job import new_job_id
from fluxhook.media import draft_caches


def test_a_jobs_draft_cache_is_kept_beside_its_video_under_a_key_of_its_own():
    job_id, other = new_job_id(), new_job_id()

    key = draft_caches.key_for(job_id)

    assert key == f"{job_id}-draft.{draft_caches.EXTENSION}"
    assert key != f"{job_id}.mp4" and key != draft_caches.key_for(other)
