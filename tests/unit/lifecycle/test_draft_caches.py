"""A draft cache's URL life (fluxhook/lifecycle/draft_caches.py): it runs from its renewal, and the wait for it ends;
a draft cache goes to the store its job's files are in, or nowhere."""

from __future__ import annotations

import time

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import DraftOutcome
from fluxhook.lifecycle import draft_caches
from fluxhook.lifecycle.steps import timeline
from fluxhook.media.fetch import VIDEO_URL_LIFE


def test_a_draft_urls_life_runs_from_its_renewal_and_the_wait_for_it_ends():
    finished = 1_000_000.0
    job = Job(id="job_x", status="stored", finished_at=finished, draft_cache_source="https://d/x")
    life = VIDEO_URL_LIFE
    assert not draft_caches.past_life(job, finished + life - 1)
    assert draft_caches.past_life(job, finished + life + 1)
    renewed = Job(id="job_x", status="stored", finished_at=finished, draft_cache_source="https://d/y",
                  draft_cache_since=finished + life)
    assert not draft_caches.past_life(renewed, finished + life + 1)
    # /draft_cache answers 404 while the task may still bring it, 410 once even its last retries are over.
    assert draft_caches.still_coming(job, finished + life + draft_caches.GRACE - 1)
    assert not draft_caches.still_coming(job, finished + life + draft_caches.GRACE + 1)
    assert not draft_caches.still_coming(Job(id="job_x", status="stored", finished_at=finished), finished)


def test_a_draft_cache_is_not_stored_apart_from_its_jobs_files_in_a_store_configured_since(make_services):
    svc = make_services(7)
    now = time.time()
    job = Job(id=new_job_id(now), status=st.STORED, model="flux-3-video", created_at=now, updated_at=now,
              finished_at=now, storage_key="x.mp4", stored_in="s3://fluxhook-dev/images",
              draft_cache_source="https://delivery-eu1.bfl.ai/draft/x")
    svc.jobs.create(job)

    assert draft_caches.store_draft_cache(svc, job.id, last_attempt=False) == DraftOutcome.SKIPPED

    after = svc.jobs.get(job.id)
    assert (after.draft_cache, after.draft_cache_source) == (None, None)
    [noted] = [e for e in timeline.recent(svc.store.timeline, job.id) if e["kind"] == "draft_cache"]
    assert (noted["outcome"], noted["error"]) == ("skipped", "stored_elsewhere")
    assert "S3 bucket fluxhook-dev (under images/)" in noted["reason"]
