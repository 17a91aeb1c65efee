"""Retention and key TTLs on a real Redis and a real directory: old jobs go, with their images."""

from __future__ import annotations

import io
import os
import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, new_batch_id
from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.retention import purge_expired
from fluxhook.lifecycle.steps import batch_inputs
from fluxhook.store.keys import KEYS

DAY = 86400


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(6, JOB_RETENTION_DAYS="30", STORAGE_URL=f"file://{tmp_path / 'images'}")


def _stored_job(svc, made_at: float, bfl_id: str) -> Job:
    job = Job(id=new_job_id(made_at), status=st.SUBMITTED, bfl_id=bfl_id, created_at=made_at, updated_at=made_at)
    svc.jobs.create(job)
    key = f"{job.id}.png"
    svc.storage.put(key, io.BytesIO(b"\x89PNG fake"))
    os.utime(svc.storage.root / key, (made_at, made_at))
    svc.jobs.transition(job.id, st.READY, result_url="https://x/1.png")
    svc.jobs.transition(job.id, st.STORED, image={"sha256": "x"}, storage_key=key)
    return job


def test_jobs_past_retention_are_removed_with_their_images(svc):
    now = time.time()
    old = [_stored_job(svc, now - 31 * DAY + n, f"old-{n}") for n in range(3)]
    recent = _stored_job(svc, now - 29 * DAY, "recent")
    assert purge_expired(svc, now) == 3
    for job in old:
        assert svc.jobs.get(job.id) is None
        assert svc.jobs.get_by_bfl_id(job.bfl_id) is None
        assert not (svc.storage.root / f"{job.id}.png").exists()
    assert svc.jobs.get(recent.id).status == st.STORED
    assert (svc.storage.root / f"{recent.id}.png").exists()
    listed, _ = svc.jobs.list(limit=10)
    assert [j.id for j in listed] == [recent.id]
    assert purge_expired(svc, now) == 0  # nothing left to do: idempotent


def test_records_carry_a_ttl_beyond_retention(svc):
    job, _ = svc.jobs.create(Job(id=new_job_id(), status=st.SUBMITTED, bfl_id="ttl-1", created_at=time.time(),
                                 updated_at=time.time()))
    for key in (KEYS.job(job.id), KEYS.bfl_trackers("ttl-1")):
        assert 31 * DAY < svc.redis.ttl(key) <= 32 * DAY
    queued, _ = svc.jobs.create(Job(id=new_job_id(), status=st.QUEUED, created_at=time.time(), updated_at=time.time()))
    svc.jobs.transition(queued.id, st.SUBMITTED, bfl_id="ttl-2")
    assert 31 * DAY < svc.redis.ttl(KEYS.bfl_task("ttl-2")) <= 32 * DAY


def test_index_entries_of_records_that_expired_by_ttl_are_dropped(svc):
    now = time.time()
    job = _stored_job(svc, now - 40 * DAY, "expired-by-ttl")
    svc.redis.delete(KEYS.job(job.id))  # what the TTL does
    assert purge_expired(svc, now) == 1
    assert svc.redis.zscore(KEYS.all_jobs, job.id) is None
    assert svc.redis.zcard(KEYS.status("stored")) == 0
    assert not (svc.storage.root / f"{job.id}.png").exists()  # removed as a stray old file


def test_stray_files_and_old_partials_are_removed_but_nothing_else(svc):
    now = time.time()
    root = svc.storage.root
    root.mkdir(parents=True, exist_ok=True)
    stray, partial, fresh_partial, foreign = (root / "job_STRAY.png", root / ".partial-abc", root / ".partial-new",
                                              root / "README")
    for path in (stray, partial, fresh_partial, foreign):
        path.write_bytes(b"x")
    os.utime(stray, (now - 31 * DAY,) * 2)
    os.utime(partial, (now - 7200,) * 2)
    os.utime(foreign, (now - 365 * DAY,) * 2)
    purge_expired(svc, now)
    assert not stray.exists() and not partial.exists()
    assert fresh_partial.exists() and foreign.exists()


def test_a_batchs_input_in_storage_goes_with_the_batch(svc):
    """Its file written now (so no age of its own removes it): it goes because its batch does."""
    now = time.time()
    made = {}
    for name, made_at in (("old", now - 31 * DAY), ("recent", now - 29 * DAY)):
        batch = Batch(id=new_batch_id(made_at), model="flux-2-pro", total=1, created_at=made_at)
        svc.store.batches.create(batch, making_until=made_at)
        batch_inputs.keep(svc, batch.id, ItemSpool.of([BatchItem({"prompt": name}, {"sku": name})]), None)
        made[name] = batch.id

    purge_expired(svc, now)

    assert svc.store.batches.get(made["old"]) is None and list(batch_inputs.lines(svc, made["old"])) == []
    assert [line.metadata for line in batch_inputs.lines(svc, made["recent"])] == [{"sku": "recent"}]
