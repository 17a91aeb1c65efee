"""``GET /v1/jobs?model=`` (alone and with ``status``): read from an index of each model's jobs kept by the
create and delete scripts, never by scanning jobs; over HTTP, and in Redis."""

from __future__ import annotations

import time

import pytest

from conftest import API
from fluxhook.core import transitions as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.retention import purge_expired
from fluxhook.store.keys import KEYS
from helpers import assert_error, commands_during

DB = 13


def _ids(api: API, **params) -> list[str]:
    return [job["id"] for job in api.get("/v1/jobs", params={"limit": 100, **params}).json()["jobs"]]


def _pages(api: API, **params) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        body = api.get("/v1/jobs", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([job["id"] for job in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_the_list_of_one_model_newest_first_page_by_page(api, sim):
    tag = f"{int(time.time() * 1000) % 10**6}"
    a, b = f"flux-filter-a-{tag}", f"flux-filter-b-{tag}"
    made = [api.submit(f"[pending] filter {n}", model=(a, b)[n % 3 == 0])["id"] for n in range(9)]
    of_a = [job_id for n, job_id in enumerate(made) if n % 3 != 0][::-1]
    assert _ids(api, model=a) == of_a
    assert _ids(api, model=b) == [job_id for n, job_id in enumerate(made) if n % 3 == 0][::-1]
    assert _pages(api, model=a, limit=4) == [of_a[:4], of_a[4:]]
    assert all(job["model"] == a for job in api.get("/v1/jobs", params={"model": a}).json()["jobs"])
    assert _ids(api, model=f"flux-filter-none-{tag}") == []


def test_model_and_status_together(api, sim, spy):
    tag = f"{int(time.time() * 1000) % 10**6}"
    model = f"flux-filter-both-{tag}"
    pending = [api.submit(f"[pending] both {n}", model=model)["id"] for n in range(5)]
    done = [api.submit(f"both done {n}", model=model)["id"] for n in range(3)]
    for job_id in done:
        assert api.wait_for(job_id)["status"] == "stored"
    assert _ids(api, model=model, status="stored") == done[::-1]
    assert _ids(api, model=model, status="submitted") == pending[::-1]
    assert sum(_pages(api, model=model, status="submitted", limit=2), []) == pending[::-1]
    assert _ids(api, model=model, status="failed") == []


def test_a_deleted_job_leaves_its_models_list(api, sim):
    model = f"flux-filter-deleted-{int(time.time() * 1000) % 10**6}"
    kept, gone = (api.submit(f"[pending] {name}", model=model)["id"] for name in ("kept", "gone"))
    assert api.delete(f"/v1/jobs/{gone}").status_code == 204
    assert _ids(api, model=model) == [kept]


@pytest.mark.parametrize("model", ["Flux Pro", "../etc", "x" * 65, "flux_2"])
def test_a_model_that_cannot_be_one_is_a_400(api, model):
    assert "model must be a BFL model name" in assert_error(api.get("/v1/jobs", params={"model": model}), 400,
                                                            "invalid_request")["message"]


def test_an_empty_model_means_no_filter(api, sim):
    job = api.submit("[pending] unfiltered")
    assert job["id"] in _ids(api, model="")


# --- in Redis --------------------------------------------------------------------------------------

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
    commands = commands_during(svc.redis, DB, lambda: listed.append(svc.jobs.list(model="flux-2-max", limit=10)))
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
        jobs, cursor = svc.jobs.list(status=st.READY, model="flux-2-max", limit=5, cursor=cursor)
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
