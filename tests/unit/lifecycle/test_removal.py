"""Removing a job (fluxhook/lifecycle/removal.py) on a real Redis and a real directory: the record, its result and
every file made beside it, its timeline; and a job whose record already expired leaves no index entry behind."""

from __future__ import annotations

import io
import time

import pytest

from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.draft_caches import key_for as draft_cache_key
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps import task_inputs, timeline
from fluxhook.media import posters, thumbnails
from fluxhook.store.keys import KEYS

DB = 6


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _beside(job_id: str) -> list[str]:
    """The storage keys of the files made beside a job's result."""
    return [thumbnails.key_for(job_id), posters.key_for(job_id), draft_cache_key(job_id), task_inputs.key_for(job_id)]


def _stored_job(svc, model: str = "flux-2-pro") -> Job:
    """A stored job with its result, the files made beside it, and a timeline."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, model=model, bfl_id=f"task-{new_job_id()}",
                                 created_at=now, updated_at=now, submitted_at=now))
    key = f"{job.id}.png"
    for name in (key, *_beside(job.id)):
        svc.storage.put(name, io.BytesIO(b"bytes of " + name.encode()))
    svc.jobs.transition(job.id, st.READY, result_url="https://x/1.png")
    svc.jobs.transition(job.id, st.STORED, image={"sha256": "x"}, storage_key=key)
    timeline.record(svc, job.id, "download", outcome="stored")
    return job


def _files(svc) -> list[str]:
    return sorted(path.name for path in svc.storage.root.iterdir())


def test_a_stored_job_goes_with_its_result_every_file_beside_it_and_its_timeline(svc):
    job, other = _stored_job(svc), _stored_job(svc)
    assert svc.store.timeline.newest(job.id)

    assert remove_job(svc, job.id) is True

    assert svc.jobs.get(job.id) is None and svc.jobs.get_by_bfl_id(job.bfl_id) is None
    assert svc.store.timeline.newest(job.id) == []
    assert not [name for name in _files(svc) if name.startswith(job.id)]
    # Another job's files and timeline stay.
    assert _files(svc) == sorted([f"{other.id}.png", *_beside(other.id)])
    assert svc.jobs.get(other.id).status == st.STORED and svc.store.timeline.newest(other.id)
    listed, _ = svc.jobs.list(limit=10)
    assert [j.id for j in listed] == [other.id]


def test_removing_a_job_again_or_one_never_made_is_false(svc):
    job = _stored_job(svc)
    assert remove_job(svc, job.id) is True
    assert remove_job(svc, job.id) is False
    assert remove_job(svc, new_job_id()) is False
    assert remove_job(svc, "not-a-job-id") is False


def test_a_job_without_a_result_goes_and_nothing_else_is_touched(svc):
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="task-pending", created_at=now,
                                 updated_at=now, submitted_at=now))
    stored = _stored_job(svc)
    assert remove_job(svc, job.id) is True
    assert svc.jobs.get(job.id) is None
    assert _files(svc) == sorted([f"{stored.id}.png", *_beside(stored.id)])


def test_a_job_whose_record_expired_leaves_no_index_entry_nor_timeline(svc):
    job = _stored_job(svc)
    svc.redis.delete(KEYS.job(job.id))  # the record's TTL ran out; its index entries and timeline did not
    assert svc.redis.zscore(KEYS.all_jobs, job.id) is not None

    assert remove_job(svc, job.id) is False

    assert svc.redis.zscore(KEYS.all_jobs, job.id) is None
    assert svc.redis.zscore(KEYS.status(st.STORED), job.id) is None
    assert svc.store.timeline.newest(job.id) == []
