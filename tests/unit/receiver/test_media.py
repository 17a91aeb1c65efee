"""A job's file routes (receiver/media.py, and /image through its ``authorized_job``) for a job whose files went to a
store that is no longer the configured one: one clear ``410`` naming both stores and the setting that reads them, on
every route of the job's files; a job of this store, or one whose file was copied here, is served as ever. On an
in-process app (its Flask test client) over a Redis database of its own."""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from conftest import API_TOKEN
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import key_admin
from receiver import create_app

OLD_STORE = "s3://fluxhook-dev/images"
BYTES = b"\xff\xd8\xff stored bytes"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture()
def app(make_services, tmp_path):
    svc = make_services(6, STORAGE_URL=f"file://{tmp_path}/images")
    return svc, create_app(services=svc).test_client()


def _stored(svc, *, video: bool, stored_in: str | None) -> Job:
    now = time.time()
    job_id = new_job_id(now)
    digest = hashlib.sha256(BYTES).hexdigest()
    described = {"size": len(BYTES), "sha256": digest, "width": 8, "height": 8}
    files = ({"video": {**described, "content_type": "video/mp4", "duration": 1.0, "fps": 24.0, "has_audio": False},
              "poster": {"key": f"{job_id}-poster.jpg", "size": len(BYTES), "sha256": digest,
                         "content_type": "image/jpeg"}, "storage_key": f"{job_id}.mp4"}
             if video else {"image": {**described, "content_type": "image/jpeg"}, "storage_key": f"{job_id}.jpg"})
    job = Job(id=job_id, status=st.STORED, model="flux-2-pro", created_at=now, updated_at=now, completed_at=now,
              stored_in=stored_in, draft_cache={"key": f"{job_id}-draft.bin", "size": len(BYTES), "sha256": digest},
              **files)
    svc.jobs.create(job)
    return job


def _put_files(svc, job: Job) -> None:
    for key in (job.storage_key, job.draft_cache["key"], *([job.poster["key"]] if job.poster else [])):
        svc.storage.put(key, io.BytesIO(BYTES))


@pytest.mark.parametrize(("video", "routes"), [(False, ("image", "draft_cache")),
                                               (True, ("video", "poster", "draft_cache"))])
def test_a_job_stored_in_another_store_answers_one_410_naming_both_stores(app, tmp_path, video, routes):
    svc, client = app
    job = _stored(svc, video=video, stored_in=OLD_STORE)
    for route in routes:
        answer = client.get(f"/v1/jobs/{job.id}/{route}", headers=AUTH, buffered=True)
        assert answer.status_code == 410, (route, answer.text)
        error = answer.get_json()["error"]
        assert error["code"] == "stored_elsewhere"
        assert error["message"] == (
            "this job's files are stored in S3 bucket fluxhook-dev (under images/), but this service now stores "
            f"files in the folder {tmp_path}/images: to read them, set STORAGE_URL={OLD_STORE} (with "
            "S3_ENDPOINT_URL and the AWS_* credentials that reach it)")
        # Its signed link, as a browser or an <img> follows it, is answered the same.
        token = signing.file_token(svc.config.secret_key, job.id, route)
        assert client.get(f"/v1/jobs/{job.id}/{route}?token={token}", buffered=True).status_code == 410


def test_a_job_of_this_store_or_whose_files_were_copied_here_is_served(app):
    svc, client = app
    here = _stored(svc, video=False, stored_in=svc.storage.location)
    copied = _stored(svc, video=True, stored_in=OLD_STORE)
    _put_files(svc, here)
    _put_files(svc, copied)
    for job, routes in ((here, ("image", "draft_cache")), (copied, ("video", "poster", "draft_cache"))):
        for route in routes:
            answer = client.get(f"/v1/jobs/{job.id}/{route}", headers=AUTH, buffered=True)
            assert (answer.status_code, answer.data) == (200, BYTES), (route, answer.text)
    # Missing from this very store (or a record that names no store): the route's own answer, not "elsewhere".
    lost, unnamed = _stored(svc, video=False, stored_in=svc.storage.location), _stored(svc, video=False, stored_in=None)
    for job in (lost, unnamed):
        answer = client.get(f"/v1/jobs/{job.id}/image", headers=AUTH, buffered=True)
        assert answer.status_code == 410 and answer.get_json()["error"]["code"] == "gone", answer.text


def test_a_keys_refused_signed_links_are_refused_from_memory_with_no_redis_step(make_services, tmp_path):
    # Its lane for links (receiver/bulkheads.py) keeps the refusal, and repeats it slowly (bulkheads.TARPIT_SECONDS).
    svc = make_services(6, STORAGE_URL=f"file://{tmp_path}/images", READS_PER_MINUTE="6")
    client = create_app(services=svc).test_client()
    key, _ = key_admin.create_key(svc, {"name": "links"}, time.time())
    other, _ = key_admin.create_key(svc, {"name": "other"}, time.time())
    jobs = []
    for owner in (key, other):
        job = _stored(svc, video=False, stored_in=svc.storage.location)
        svc.jobs.update(job.id, only_in=(st.STORED,), key_id=owner.id)
        _put_files(svc, job)
        jobs.append((job, signing.file_token(svc.config.secret_key, job.id, "image")))
    (mine, token), (theirs, their_token) = jobs
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 200:
        statuses.append(client.get(f"/v1/jobs/{mine.id}/image?token={token}", buffered=True).status_code)
    assert statuses.count(200) >= 5 and statuses[-1] == 429, statuses
    stats = svc.redis.info("commandstats")
    before = {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("hgetall", "evalsha")}

    refused = [client.get(f"/v1/jobs/{mine.id}/image?token={token}", buffered=True)]  # within its Retry-After

    stats = svc.redis.info("commandstats")
    assert {answer.status_code for answer in refused} == {429}
    assert all(stats.get(f"cmdstat_{name}", {}).get("calls", 0) == calls for name, calls in before.items())
    # The other key's link is its own bucket's: served.
    assert client.get(f"/v1/jobs/{theirs.id}/image?token={their_token}", buffered=True).status_code == 200
