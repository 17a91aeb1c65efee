"""Each model's index of jobs in Redis (fluxhook/store/jobs.py): kept by the create and delete scripts and by retention,
and read for ``?model=`` (alone and with ``status``) a bounded number of ids per page, never by scanning jobs.
Over HTTP: tests/e2e/api/test_model_filter.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter
from fluxhook.lifecycle.retention import purge_expired
from fluxhook.store.keys import KEYS
from helpers import commands_during

DB = 13


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _job(svc, model: str | None, made_at: float | None = None) -> Job:
    now = made_at or time.time()
    job = Job(id=new_job_id(now), status=st.SUBMITTED, model=model, bfl_id=f"task-{new_job_id()}",
              created_at=now, updated_at=now)
    svc.jobs.create(job)
    return job


def test_the_list_reads_the_models_index_not_every_job(svc):
    mine = [_job(svc, "flux-2-max") for _ in range(3)]
    for _ in range(50):
        _job(svc, "flux-2-pro")
    _job(svc, None)  # a tracked task registered without a model is in no model's index
    listed: list = []
    commands = commands_during(svc.redis, DB, lambda: listed.append(svc.jobs.list(JobFilter(model="flux-2-max"), limit=10)))
    assert [job.id for job in listed[0][0]] == [job.id for job in mine][::-1] and listed[0][1] is None
    sent = [c["command"] for c in commands if c["client_type"] != "lua" and not c["command"].startswith("SELECT")]
    assert sent[0] == "ZREVRANGEBYLEX fh:model:flux-2-max + - LIMIT 0 11", sent
    assert len([c for c in sent if c.startswith("HGETALL")]) == 3
    assert svc.redis.smembers(KEYS.models) == {b"flux-2-max", b"flux-2-pro"}


def test_both_filters_read_a_bounded_number_of_ids_per_page(svc, monkeypatch):
    import fluxhook.store.jobs as store_jobs

    monkeypatch.setattr(store_jobs, "BOTH_FILTERS_READ", 20)
    monkeypatch.setattr(store_jobs, "BOTH_FILTERS_BATCH", 10)
    rare = _job(svc, "flux-2-max")
    for _ in range(29):
        _job(svc, "flux-2-max")
    for job in [rare] + [_job(svc, "flux-2-pro") for _ in range(30)]:
        svc.jobs.transition(job.id, st.READY, result_url="https://x/1.png")
    pages, cursor = [], None
    while True:
        jobs, cursor = svc.jobs.list(JobFilter(status=st.READY, model="flux-2-max"), limit=5, cursor=cursor)
        pages.append([job.id for job in jobs])
        if cursor is None:
            break
    # The smaller index (the model's 30) walked newest first, 20 ids at most per page: the oldest is the match.
    assert pages == [[], [rare.id]]


def test_retention_drops_an_expired_job_from_its_models_index(svc):
    old = _job(svc, "flux-2-max", made_at=time.time() - 40 * 86400)
    svc.redis.delete(KEYS.job(old.id))  # its record expired by its TTL; only index entries are left
    assert purge_expired(svc) == 1
    assert svc.redis.zcard(KEYS.model_jobs("flux-2-max")) == 0
