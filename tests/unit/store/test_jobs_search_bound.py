"""A prompt search's time bound (fluxhook/store/jobs.py ``SEARCH_SECONDS``): a search that reads prompts past it gives
up with a clear error, and the same search within it answers."""

from __future__ import annotations

import pytest

import fluxhook.store.jobs as store_jobs
from fluxhook.core import job as st
from fluxhook.core.errors import SearchTooLong
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter

T0 = 1_790_000_000.0


def test_a_search_past_its_bound_is_refused_and_within_it_answers(store, monkeypatch):
    made = []
    for n in range(3):
        job = Job(id=new_job_id(T0 + n), status=st.SUBMITTED, model="flux-2-pro", key_id="key_aaaaaaaaaaaaaaaa",
                  prompt=f"a red fox {n}", bfl_id=new_job_id(), created_at=T0 + n, updated_at=T0 + n)
        assert store.create(job)[1]
        made.append(job.id)
    monkeypatch.setattr(store_jobs, "SEARCH_SECONDS", -1.0)  # every read is past the bound
    with pytest.raises(SearchTooLong) as refused:
        store.list(JobFilter(text="red fox"), limit=100)
    assert "narrow it" in refused.value.message and refused.value.status == 503
    monkeypatch.setattr(store_jobs, "SEARCH_SECONDS", 5.0)
    jobs, _ = store.list(JobFilter(text="red fox"), limit=100)
    assert [job.id for job in jobs] == made[::-1]
