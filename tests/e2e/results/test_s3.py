"""S3-compatible storage through the Procfile's web and worker, with ``STORAGE_URL=s3://...`` on Redis database 9 and a
real S3 server process (moto in server mode) on 127.0.0.1: images land in the bucket, ``image.url`` redirects to a
presigned URL, or (``S3_IMAGE_DELIVERY=stream``) the web process streams the object itself; videos are read back by
byte ranges. The store on its own: tests/e2e/results/test_storage_s3.py.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from PIL import Image

from conftest import API, ready_payload, service_env
from devtools.processes import free_port, wait_until
from devtools.stack import Stack
from fluxhook.media import thumbnails
from fluxhook.media.storage import S3Storage
from helpers import sign_in
from mp4_samples import free_box, make_mp4
from s3_helpers import AWS_ENV, BUCKET, moto_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def png(seed: int = 0, size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes((seed + n) % 251 for n in range(size))


PREFIX = "stack/images"
# No other stack of the suite uses it. Its worker, with no daily credit limit, sends any queued job of its database:
# on a database another module's stack uses too, it sent that stack's jobs past their limits.
DB = 3


def _s3_env(redis_server, simulator, spy_port: int, s3_server, **overrides) -> dict[str, str]:
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, spy_port, free_port(), STORAGE_URL=f"s3://{BUCKET}/{PREFIX}",
                           S3_ENDPOINT_URL=s3_server.url, **AWS_ENV, **overrides))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    return env


@pytest.fixture(scope="module")
def s3_stack(redis_server, simulator, _spies, s3_server, tmp_path_factory):
    """Web and worker storing in the bucket; images answered with a redirect (the default)."""
    env = _s3_env(redis_server, simulator, _spies[0].port, s3_server)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=Path(tmp_path_factory.mktemp("s3-stack")))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()


@pytest.fixture(scope="module")
def s3_stream_web(redis_server, simulator, _spies, s3_server, s3_stack, tmp_path_factory):
    """A second web process on the same Redis and bucket, with S3_IMAGE_DELIVERY=stream."""
    env = _s3_env(redis_server, simulator, _spies[0].port, s3_server, S3_IMAGE_DELIVERY="stream")
    running = Stack(env=env, var_dir=Path(tmp_path_factory.mktemp("s3-stream")))
    try:
        running.start("web")
        yield running
    finally:
        running.stop()


@pytest.fixture()
def s3_api(s3_stack) -> API:
    return API(s3_stack.base_url)


def _stored(s3_api, sim, s3_server, prompt: str = "a fox in a bucket") -> tuple[dict, bytes]:
    job = s3_api.submit(prompt)
    done = s3_api.wait_for(job["id"], timeout=30)
    assert done["status"] == "stored", done
    return done, sim.image_bytes(done["bfl_id"])


def _object_key(job: dict) -> str:
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[job["image"]["content_type"]]
    return f"{PREFIX}/{job['id']}.{extension}"


def test_a_stored_image_is_the_object_in_the_bucket(s3_api, sim, s3_server):
    job, served = _stored(s3_api, sim, s3_server)
    key = _object_key(job)

    assert s3_server.body(key) == served
    assert job["image"]["sha256"] == hashlib.sha256(served).hexdigest()
    assert job["image"]["size"] == len(served)
    head = s3_server.client.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == job["image"]["sha256"]
    assert head["ContentType"] == job["image"]["content_type"]


def test_image_url_redirects_to_a_short_lived_presigned_url(s3_api, sim, s3_server):
    job, served = _stored(s3_api, sim, s3_server, "[jpeg] a redirected fox")

    response = requests.get(job["image"]["url"], allow_redirects=False, timeout=10)  # no bearer token
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    assert location.startswith(f"{s3_server.url}/{BUCKET}/{_object_key(job)}?")
    # min(300, IMAGE_URL_TTL_SECONDS=60)
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["60"]

    followed = requests.get(location, timeout=10)
    assert followed.status_code == 200 and followed.content == served
    assert followed.headers["Content-Type"] == job["image"]["content_type"] == "image/jpeg"

    # The bearer token redirects too; the image endpoint's rules are unchanged.
    assert s3_api.get(f"/v1/jobs/{job['id']}/image").content == served
    assert requests.get(f"{s3_api.base_url}/v1/jobs/{job['id']}/image", allow_redirects=False,
                        timeout=10).status_code == 401
    assert requests.get(job["image"]["url"] + "x", allow_redirects=False, timeout=10).status_code == 401
    unchanged = s3_api.get(f"/v1/jobs/{job['id']}/image", allow_redirects=False,
                           headers={"If-None-Match": f'"{job["image"]["sha256"]}"'})
    assert unchanged.status_code == 304 and "Location" not in unchanged.headers


def test_image_not_stored_yet_is_404_and_without_one_410(s3_api, sim):
    pending = s3_api.submit("[pending] not yet")
    assert s3_api.get(f"/v1/jobs/{pending['id']}/image", allow_redirects=False).status_code == 404
    failed = s3_api.wait_for(s3_api.submit("[error] no image")["id"], timeout=30)
    assert failed["status"] == "failed"
    assert s3_api.get(f"/v1/jobs/{failed['id']}/image", allow_redirects=False).status_code == 410


def test_stream_delivery_serves_the_bytes_with_etag_and_304(s3_api, sim, s3_server, s3_stream_web):
    job, served = _stored(s3_api, sim, s3_server, "[png] a streamed fox")
    streamer = API(s3_stream_web.base_url)
    etag = f'"{job["image"]["sha256"]}"'

    response = streamer.get(f"/v1/jobs/{job['id']}/image", allow_redirects=False)
    assert response.status_code == 200 and response.content == served
    assert response.headers["ETag"] == etag
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(served))
    assert response.headers["Cache-Control"] == "private, max-age=3600, immutable"

    again = streamer.get(f"/v1/jobs/{job['id']}/image", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    # The signed image.url of this web process streams too.
    shown = streamer.job(job["id"])
    signed = requests.get(shown["image"]["url"], allow_redirects=False, timeout=10)
    assert signed.status_code == 200 and signed.content == served

    # An object gone from the bucket behind fluxhook's back: 410, as with a missing file.
    s3_server.client.delete_object(Bucket=BUCKET, Key=_object_key(job))
    assert streamer.get(f"/v1/jobs/{job['id']}/image").status_code == 410


def test_delete_removes_the_object(s3_api, sim, s3_server):
    job, _ = _stored(s3_api, sim, s3_server, "a fox to forget")
    assert s3_server.exists(_object_key(job))

    assert s3_api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert not s3_server.exists(_object_key(job))
    assert s3_api.get(f"/v1/jobs/{job['id']}/image").status_code == 404


def _thumbnail_in_bucket(s3_server, job_id: str) -> bytes:
    """The job's thumbnail object, once the worker has made it (its download task, just after storing the image)."""
    key = f"{PREFIX}/{thumbnails.key_for(job_id)}"
    wait_until(lambda: s3_server.exists(key), timeout=30, message=f"the thumbnail of {job_id} in the bucket")
    return s3_server.body(key)


def test_a_stored_image_gets_its_thumbnail_in_the_bucket_and_the_dashboard_shows_it(s3_api, sim, s3_server):
    sim.settings(image_bytes=180_000)  # a noisy PNG of about 60 000 pixels: larger than a thumbnail
    job, _ = _stored(s3_api, sim, s3_server, "a fox with a preview")
    assert max(job["image"]["width"], job["image"]["height"]) > thumbnails.MAX_SIDE

    made = _thumbnail_in_bucket(s3_server, job["id"])
    with Image.open(io.BytesIO(made)) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) == thumbnails.MAX_SIDE
    head = s3_server.client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{thumbnails.key_for(job['id'])}")
    assert head["ContentType"] == thumbnails.CONTENT_TYPE

    # The dashboard reads it back from the bucket: its list names it, its route serves those bytes.
    http, _ = sign_in(s3_api.base_url)
    row = next(j for j in http.get(f"{s3_api.base_url}/live/jobs", timeout=10).json()["jobs"] if j["id"] == job["id"])
    served = http.get(s3_api.base_url + row["thumbnail"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == thumbnails.CONTENT_TYPE
    assert served.content == made


def test_readyz_with_s3_storage(s3_api, s3_server):
    response = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(s3_api.get("/readyz")),
                          timeout=30, message="/readyz to answer 200")
    assert response.json() == {"status": "ok", "reasons": []}
    assert s3_server.exists(f"{PREFIX}/{S3Storage.PROBE_NAME}")


# -- videos: ranges from the bucket ------------------------------------------------------------------------

VIDEO_MP4 = make_mp4(seconds=2, width=256, height=144)


def _video_job(api: API, spy, name: str) -> dict:
    url = spy.route(f"/{name}.mp4", body=VIDEO_MP4 + free_box(4096))
    job = api.submit("[pending] a video for the bucket")
    assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    done = api.wait_for(job["id"], timeout=30)
    assert done["status"] == "stored", done
    return done


def test_a_video_job_lands_in_the_bucket_and_redirects_to_it(s3_api, s3_server, spy):
    job = _video_job(s3_api, spy, "bucket-video")
    body = VIDEO_MP4 + free_box(4096)
    assert s3_server.body(f"{PREFIX}/{job['id']}.mp4") == body
    assert s3_server.exists(f"{PREFIX}/{job['id']}-poster.jpg")

    moved = requests.get(job["video"]["url"], allow_redirects=False, timeout=10)
    assert moved.status_code == 302
    part = requests.get(moved.headers["Location"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and part.content == body[:100]
    poster = requests.get(job["video"]["poster_url"], timeout=10)
    assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"
    # A video's thumbnail is made from its poster, read back from the bucket.
    with Image.open(io.BytesIO(_thumbnail_in_bucket(s3_server, job["id"]))) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (256, 144)


def test_stream_delivery_reads_ranges_from_the_bucket(s3_api, s3_stream_web, spy):
    job = _video_job(s3_api, spy, "streamed-video")
    body = VIDEO_MP4 + free_box(4096)
    streamer = API(s3_stream_web.base_url)

    part = streamer.get(f"/v1/jobs/{job['id']}/video", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == body[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(body)}"
    whole = streamer.get(f"/v1/jobs/{job['id']}/video")
    assert whole.status_code == 200 and whole.content == body
    assert streamer.get(f"/v1/jobs/{job['id']}/video", headers={"Range": f"bytes={len(body)}-"}).status_code == 416
