"""Variants of stored images in an S3 bucket, through the Procfile's web and worker with
``STORAGE_URL=s3://...`` and a real S3 server process (moto in server mode) on 127.0.0.1: a variant is made once and
stored beside its original in the bucket; the answer redirects to it as the original's does (``Vary: Accept`` kept
for ``auto``), a stored one answers ``304`` without asking the bucket, a web process with
``S3_IMAGE_DELIVERY=stream`` streams it with a signed link's public caching; deleting key A's job deletes its variant
objects, key B's stay."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
import redis
import requests
from PIL import Image

from conftest import API, service_env
from devtools.processes import free_port
from devtools.stack import Stack
from key_helpers import as_key, make_key
from s3_helpers import AWS_ENV, BUCKET, moto_server

PREFIX = "variants/images"
DB = 12  # this module's stack (the other modules on it run theirs before or after it, one at a time)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto-variants") / "moto.log") as server:
        yield server


def _env(redis_server, simulator, spy_port: int, s3_server, **overrides) -> dict[str, str]:
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, spy_port, free_port(), STORAGE_URL=f"s3://{BUCKET}/{PREFIX}",
                           S3_ENDPOINT_URL=s3_server.url, **AWS_ENV, **overrides))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    return env


@pytest.fixture(scope="module")
def s3_stack(redis_server, simulator, _spies, s3_server, tmp_path_factory):
    env = _env(redis_server, simulator, _spies[0].port, s3_server)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=Path(tmp_path_factory.mktemp("variants-s3")))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()


@pytest.fixture(scope="module")
def streamer(redis_server, simulator, _spies, s3_server, s3_stack, tmp_path_factory):
    """A second web process on the same Redis and bucket, with S3_IMAGE_DELIVERY=stream."""
    env = _env(redis_server, simulator, _spies[0].port, s3_server, S3_IMAGE_DELIVERY="stream")
    running = Stack(env=env, var_dir=Path(tmp_path_factory.mktemp("variants-s3-stream")))
    try:
        running.start("web")
        yield API(running.base_url)
    finally:
        running.stop()


@pytest.fixture()
def admin(s3_stack, sim) -> API:
    sim.settings(scene_images=True, image_format="jpeg")
    return API(s3_stack.base_url)


def _stored(api: API, prompt: str) -> dict:
    answer = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": 768,
                                                                         "height": 512}})
    assert answer.status_code == 202, answer.text
    job = api.wait_for(answer.json()["id"], timeout=30)
    assert job["status"] == "stored", job
    return job


def test_a_variant_is_stored_in_the_bucket_and_answered_with_a_redirect_to_it(admin, s3_server):
    _, as_a = make_key(admin)
    job = _stored(as_a, "a fox in a bucket")
    key = f"{PREFIX}/{job['id']}-image-512w-q50.webp"

    moved = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 500, "format": "webp", "q": 50},
                     allow_redirects=False)
    assert moved.status_code == 302, moved.text
    assert moved.headers["Location"].startswith(f"{s3_server.url}/{BUCKET}/{key}?")
    assert moved.headers["Cache-Control"] == "private, no-store"  # its target expires
    followed = requests.get(moved.headers["Location"], timeout=10)
    assert followed.status_code == 200 and followed.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(followed.content)) as made:
        assert made.size == (512, 341)
    assert s3_server.body(key) == followed.content
    assert s3_server.client.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "image/webp"

    etag = f'"{hashlib.sha256(followed.content).hexdigest()}"'
    unchanged = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 500, "format": "webp", "q": 50},
                         headers={"If-None-Match": etag}, allow_redirects=False)
    assert unchanged.status_code == 304 and "Location" not in unchanged.headers

    auto = requests.get(f"{job['image']['url']}&w=256&format=auto", headers={"Accept": "image/avif,*/*"},
                        allow_redirects=False, timeout=20)
    assert auto.status_code == 302 and auto.headers["Vary"] == "Accept"
    assert f"{job['id']}-image-256w-q75.avif?" in auto.headers["Location"]
    assert s3_server.exists(f"{PREFIX}/{job['id']}-image-256w-q75.avif")


def test_stream_delivery_serves_a_variant_from_the_bucket_with_public_caching(admin, s3_server, streamer):
    _, as_a = make_key(admin)
    job = _stored(as_a, "a streamed lake")
    shown = as_key(streamer, as_a.http.headers["Authorization"].split(" ", 1)[1]).job(job["id"])

    answer = requests.get(f"{shown['image']['url']}&w=384&format=jpeg", allow_redirects=False, timeout=20)

    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer.headers["ETag"] == f'"{hashlib.sha256(answer.content).hexdigest()}"'
    assert s3_server.body(f"{PREFIX}/{job['id']}-image-384w-q75.jpg") == answer.content
    # The other web process serves the same stored bytes (a redirect to them), not a second making.
    moved = requests.get(f"{job['image']['url']}&w=384&format=jpeg", allow_redirects=True, timeout=20)
    assert moved.content == answer.content


def test_deleting_a_job_deletes_its_variant_objects_and_not_another_keys(admin, s3_server):
    _, as_a = make_key(admin)
    _, as_b = make_key(admin)
    job_a, job_b = _stored(as_a, "a fox to forget"), _stored(as_b, "a fox to keep")
    for job, client in ((job_a, as_a), (job_b, as_b)):
        for query in ({"w": 64, "format": "png"}, {"w": 128, "format": "avif"}):
            assert client.get(f"/v1/jobs/{job['id']}/image", params=query).status_code == 200
    assert len(s3_server.keys(f"{PREFIX}/{job_a['id']}-image-")) == 2
    assert len(s3_server.keys(f"{PREFIX}/{job_b['id']}-image-")) == 2

    assert as_a.delete(f"/v1/jobs/{job_a['id']}").status_code == 204

    assert s3_server.keys(f"{PREFIX}/{job_a['id']}") == []  # the original, its thumbnail and its variants
    assert len(s3_server.keys(f"{PREFIX}/{job_b['id']}-image-")) == 2
    assert as_b.get(f"/v1/jobs/{job_b['id']}/image", params={"w": 64, "format": "png"}).status_code == 200
