"""S3-compatible storage (fluxhook/media/storage.py, ``S3Storage``) against a real S3 server process (moto in server
mode) on 127.0.0.1, over HTTP: the store on its own, and its settings. Videos go up in parts (boto3's transfer
manager) and are read back by byte ranges. The Procfile's web and worker with ``STORAGE_URL=s3://...``:
tests/e2e/results/test_s3.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from devtools.processes import free_port
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, StorageError
from fluxhook.lifecycle import readiness
from fluxhook.media.storage import S3Storage, storage_from_url
from fluxhook.media.thumbnails import make_thumbnail
from fluxhook.services import build_services
from mp4_samples import make_mp4
from s3_helpers import AWS_ENV, BUCKET, moto_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture()
def aws_env(monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture()
def store(s3_server, aws_env) -> S3Storage:
    """An S3Storage on the test bucket under a prefix of its own."""
    return S3Storage(BUCKET, f"direct/{uuid.uuid4().hex}", endpoint_url=s3_server.url)


def png(seed: int = 0, size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes((seed + n) % 251 for n in range(size))


# -- S3Storage on its own ----------------------------------------------------------------------------

def test_put_and_open_round_trip_under_the_prefix(s3_server, store):
    data = png(1)
    store.put("job_a.png", io.BytesIO(data))

    name = f"{store.prefix}/job_a.png"
    assert s3_server.keys(store.prefix) == [name]
    assert s3_server.body(name) == data
    head = s3_server.client.head_object(Bucket=BUCKET, Key=name, ChecksumMode="ENABLED")
    digest = hashlib.sha256(data).digest()
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(data)
    assert head["Metadata"] == {"sha256": digest.hex()}
    assert head["ChecksumSHA256"] == base64.b64encode(digest).decode()

    with store.open("job_a.png") as body:
        assert body.read() == data


def test_the_callers_sha256_is_recorded_and_the_source_is_read_from_its_position(s3_server, store):
    data = png(2)
    source = io.BytesIO(b"already read" + data)
    source.seek(len(b"already read"))
    store.put("job_b.jpg", source, sha256=hashlib.sha256(data).hexdigest())

    head = s3_server.client.head_object(Bucket=BUCKET, Key=f"{store.prefix}/job_b.jpg")
    assert head["ContentType"] == "image/jpeg" and head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert s3_server.body(f"{store.prefix}/job_b.jpg") == data


class Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like a pipe."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(min(len(buffer), 7000))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_source_that_cannot_seek_is_stored_whole(s3_server, store):
    data = png(3, 300_000)
    store.put("job_c.webp", Unseekable(data))
    assert s3_server.body(f"{store.prefix}/job_c.webp") == data
    head = s3_server.client.head_object(Bucket=BUCKET, Key=f"{store.prefix}/job_c.webp")
    assert head["ContentType"] == "image/webp" and head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_putting_the_same_key_twice_is_harmless(s3_server, store):
    data = png(4)
    store.put("job_d.png", io.BytesIO(data))
    store.put("job_d.png", io.BytesIO(data))
    assert s3_server.keys(store.prefix) == [f"{store.prefix}/job_d.png"]
    assert s3_server.body(f"{store.prefix}/job_d.png") == data


def test_open_and_delete_of_a_missing_image(s3_server, store):
    assert store.open("job_missing.png") is None
    store.delete("job_missing.png")  # no error

    store.put("job_e.png", io.BytesIO(png(5)))
    store.delete("job_e.png")
    assert store.open("job_e.png") is None
    assert s3_server.keys(store.prefix) == []


@pytest.mark.parametrize("key", ["../job.png", "a/b.png", "job.png/..", "", "job", "x" * 101 + ".png", "job.PNG"])
def test_keys_keep_the_file_stores_rules(s3_server, store, key):
    for call in (lambda: store.put(key, io.BytesIO(b"x")), lambda: store.open(key), lambda: store.delete(key),
                 lambda: store.url_for(key, 60, "image/png")):
        with pytest.raises(StorageError, match="invalid storage key"):
            call()
    assert s3_server.keys(store.prefix) == []


class BreaksAfter(io.BytesIO):
    """A source whose reads fail once ``limit`` bytes have been read in all (a disk error mid-upload)."""

    def __init__(self, data: bytes, limit: int):
        super().__init__(data)
        self.limit, self.total = limit, 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.total += len(chunk)
        if self.total > self.limit:
            raise OSError(5, "Input/output error")
        return chunk


@pytest.mark.parametrize("passes", [0.5, 1.5])
def test_a_failed_upload_leaves_nothing_visible(s3_server, store, passes):
    # Over plain HTTP botocore reads the body once to sign it, then again to send it:
    # 0.5 breaks during the first pass, 1.5 in the middle of sending.
    data = png(6, 400_000)
    source = BreaksAfter(data, int(len(data) * passes))
    with pytest.raises(StorageError):
        store.put("job_f.png", source, sha256=hashlib.sha256(data).hexdigest())
    assert s3_server.keys(store.prefix) == []
    assert store.open("job_f.png") is None


def test_the_writable_check_writes_a_probe_that_retention_leaves_alone(s3_server, store):
    store.check_writable()  # no StorageError: it is
    assert s3_server.keys(store.prefix) == [f"{store.prefix}/{S3Storage.PROBE_NAME}"]
    assert store.remove_older_than(time.time() + 60, partial_before=time.time() + 60) == 0
    assert s3_server.keys(store.prefix) == [f"{store.prefix}/{S3Storage.PROBE_NAME}"]


def test_a_store_without_its_bucket_is_not_writable_and_says_why(s3_server, aws_env):
    missing = S3Storage("no-such-bucket-here", "x", endpoint_url=s3_server.url)
    # Why, and which setting to fix: what `fluxhook doctor` prints.
    with pytest.raises(StorageError) as raised:
        missing.check_writable()
    assert raised.value.message == (f"cannot write a probe in s3://no-such-bucket-here: NoSuchBucket (HTTP 404) at "
                                    f"{s3_server.url} (check STORAGE_URL's bucket, and S3_ENDPOINT_URL: no such "
                                    "bucket there)")


def test_doctor_says_why_s3_storage_fails_and_which_setting(s3_server, aws_env):
    config = Config.from_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SECRET_KEY": "k" * 32,
                              "API_TOKENS": "t" * 16, "STORAGE_URL": "s3://no-such-bucket-here/images",
                              "S3_ENDPOINT_URL": s3_server.url})
    storage = next(c for c in readiness.check(build_services(config)) if c.name == "storage")
    assert storage.failed and storage.reason == "storage is not writable"  # /readyz's words name nothing
    assert storage.detail.startswith("s3://no-such-bucket-here/images is not writable: cannot write a probe in "
                                     "s3://no-such-bucket-here: NoSuchBucket (HTTP 404)")
    assert "STORAGE_URL's bucket, and S3_ENDPOINT_URL" in storage.detail


def test_a_thumbnail_is_made_from_the_stream_the_store_returns(store):
    # S3's stream cannot seek, and decoding an image seeks: the thumbnail step copies it aside first.
    picture = io.BytesIO()
    Image.effect_noise((2400, 1600), 90).convert("RGB").save(picture, "JPEG", quality=95)
    store.put("job_t.jpg", io.BytesIO(picture.getvalue()))

    with store.open("job_t.jpg") as stream:
        assert not stream.seekable()
        made = make_thumbnail(stream)
    with Image.open(io.BytesIO(made)) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (256, 171)


def test_remove_older_than_removes_only_old_images_under_the_prefix(s3_server, store):
    store.put("job_old.png", io.BytesIO(png(7)))
    s3_server.client.put_object(Bucket=BUCKET, Key=f"{store.prefix}/README", Body=b"not an image key")
    s3_server.client.put_object(Bucket=BUCKET, Key=f"{store.prefix}/nested/job_n.png", Body=b"deeper")
    s3_server.client.put_object(Bucket=BUCKET, Key=f"{store.prefix}-other/job_o.png", Body=b"beside")

    # Nothing was written before an hour ago.
    assert store.remove_older_than(time.time() - 3600, partial_before=time.time() - 3600) == 0
    assert store.open("job_old.png") is not None

    assert store.remove_older_than(time.time() + 60, partial_before=time.time()) == 1
    assert s3_server.keys(store.prefix) == sorted([
        f"{store.prefix}/README", f"{store.prefix}/nested/job_n.png", f"{store.prefix}-other/job_o.png",
    ])


def test_remove_older_than_pages_through_more_than_a_thousand_images(s3_server, store):
    from concurrent.futures import ThreadPoolExecutor

    names = [f"{store.prefix}/job_{n:04d}.png" for n in range(1003)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda name: s3_server.client.put_object(Bucket=BUCKET, Key=name, Body=b"x"), names))

    assert store.remove_older_than(time.time() + 60, partial_before=time.time()) == 1003
    assert s3_server.keys(store.prefix) == []


def test_a_presigned_url_serves_the_image(s3_server, store):
    data = png(8)
    store.put("job_g.png", io.BytesIO(data))

    url = store.url_for("job_g.png", 60, "image/png")
    assert url.startswith(f"{s3_server.url}/{BUCKET}/{store.prefix}/job_g.png?")
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Type"] == "image/png"
    # Signed with SigV4 (R2 and MinIO accept nothing else); moto does not enforce the expiry, AWS does.
    assert parse_qs(urlsplit(url).query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_no_credentials_is_a_storage_error(s3_server, monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Storage(BUCKET, "x", endpoint_url=s3_server.url)
    with pytest.raises(StorageError, match="NoCredentialsError"):
        store.url_for("job_h.png", 60, "image/png")
    with pytest.raises(StorageError):
        store.put("job_h.png", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match=r"NoCredentialsError at .*\(no credentials: set AWS_ACCESS_KEY_ID and "
                                           r"AWS_SECRET_ACCESS_KEY"):
        store.check_writable()


def test_an_unreachable_endpoint_fails_fast_with_a_storage_error(aws_env):
    store = S3Storage(BUCKET, "x", endpoint_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    started = time.monotonic()
    for call in (lambda: store.put("job_i.png", io.BytesIO(b"x")), lambda: store.open("job_i.png"),
                 lambda: store.delete("job_i.png"), lambda: store.remove_older_than(0, partial_before=0)):
        with pytest.raises(StorageError) as raised:
            call()
        assert raised.value.status == 503 and raised.value.code == "storage_error"
    with pytest.raises(StorageError, match=r"EndpointConnectionError at http://127\.0\.0\.1:\d+ \(check S3_ENDPOINT_URL"):
        store.check_writable()
    assert time.monotonic() - started < 20


def test_a_silent_endpoint_times_out(aws_env):
    class Impatient(S3Storage):
        CONNECT_TIMEOUT = 1
        READ_TIMEOUT = 1

    # Accepts connections (the kernel's backlog) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        store = Impatient(BUCKET, "x", endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(StorageError, match="Timeout"):
            store.open("job_j.png")
        assert time.monotonic() - started < 10  # two attempts of one second, and a short backoff


def test_storage_from_url_builds_the_s3_store(s3_server, aws_env):
    store = storage_from_url(f"s3://{BUCKET}/some/prefix/", endpoint_url=s3_server.url)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix) == (BUCKET, "some/prefix")
    bare = storage_from_url(f"s3://{BUCKET}", endpoint_url=s3_server.url)
    assert bare.prefix == ""
    bare.put("job_root.png", io.BytesIO(b"at the bucket's root"))
    assert s3_server.body("job_root.png") == b"at the bucket's root"
    bare.delete("job_root.png")


def test_the_client_is_made_once_per_process(s3_server, store):
    first = store._s3()
    store.put("job_k.png", io.BytesIO(b"x"))
    assert store._s3() is first
    pid = os.fork()
    if pid == 0:  # a forked child (RQ's work horse) makes its own client, and it works
        try:
            child = store._s3()
            store.put("job_child.png", io.BytesIO(b"child"))
            os._exit(0 if child is not first else 1)
        except BaseException:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    assert s3_server.body(f"{store.prefix}/job_child.png") == b"child"


# -- configuration ---------------------------------------------------------------------------------------

MINIMAL = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "BFL_API_KEY": "bfl-api-key-for-tests",
    "SECRET_KEY": "0123456789abcdef0123456789abcdef",
    "API_TOKENS": "token-aaaaaaaa",
}


def test_s3_settings_and_their_defaults():
    config = Config.from_env({**MINIMAL, "STORAGE_URL": "s3://my-bucket/fluxhook/images"})
    assert config.storage_url == "s3://my-bucket/fluxhook/images"
    assert (config.s3_endpoint_url, config.s3_image_delivery, config.s3_region) == (None, "redirect", None)

    config = Config.from_env({**MINIMAL, "STORAGE_URL": "s3://my.bucket-1", "S3_IMAGE_DELIVERY": "Stream",
                              "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com/",
                              "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "auto"})
    assert config.s3_image_delivery == "stream"
    assert config.s3_endpoint_url == "https://acc.r2.cloudflarestorage.com"
    assert config.s3_region == "auto"  # AWS_REGION first, as the AWS CLI has it
    assert Config.from_env({**MINIMAL, "AWS_DEFAULT_REGION": "eu-west-1"}).s3_region == "eu-west-1"
    # Not checked when nothing uses them: the environment may hold AWS settings for other programs.
    assert Config.from_env({**MINIMAL, "AWS_REGION": "not a region", "S3_ENDPOINT_URL": "https://x.example"})


@pytest.mark.parametrize("name, value", [
    ("STORAGE_URL", "s3://"),
    ("STORAGE_URL", "s3:///prefix"),
    ("STORAGE_URL", "s3://ab/prefix"),
    ("STORAGE_URL", "s3://My_Bucket/prefix"),
    ("STORAGE_URL", "s3://bucket-/prefix"),
    ("STORAGE_URL", "s3://my..bucket"),
    ("STORAGE_URL", "s3://192.168.1.1/x"),
    ("STORAGE_URL", "s3://" + "b" * 64),
    ("STORAGE_URL", "s3://key:secret@bucket/x"),
    ("STORAGE_URL", "s3://bucket:9000/x"),
    ("STORAGE_URL", "s3://bucket/x?region=eu"),
    ("STORAGE_URL", "s3://bucket/a//b"),
    ("STORAGE_URL", "s3://bucket/a/../b"),
    ("STORAGE_URL", "s3://bucket/a b"),
    ("S3_ENDPOINT_URL", "minio:9000"),
    ("S3_ENDPOINT_URL", "ftp://minio:9000"),
    ("S3_ENDPOINT_URL", "https://minio:9000/?x=1"),
    ("S3_IMAGE_DELIVERY", "proxy"),
    ("AWS_REGION", "eu west 1"),
    ("AWS_DEFAULT_REGION", "eu-west-1/"),
])
def test_each_bad_s3_setting_is_one_line_naming_it(name, value):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({**MINIMAL, "STORAGE_URL": "s3://good-bucket/p", name: value})
    assert [p.split(":")[0] for p in refused.value.problems] == [name], refused.value.problems


# -- videos: multipart uploads, ranges from the bucket --------------------------------------------------

VIDEO_MP4 = make_mp4(seconds=2, width=256, height=144)


def test_a_large_object_goes_up_in_parts_and_reads_back_by_ranges(s3_server, store):
    store.MULTIPART_THRESHOLD = 6 * 1024 * 1024  # parts of 8 MiB: three for this one
    data = VIDEO_MP4 + os.urandom(20 * 1024 * 1024)
    store.put("job_big.mp4", io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest())

    name = f"{store.prefix}/job_big.mp4"
    head = s3_server.client.head_object(Bucket=BUCKET, Key=name)
    assert head["ContentLength"] == len(data) and head["ContentType"] == "video/mp4"
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts its parts
    assert head["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest()}
    with store.open_at("job_big.mp4", 10_000_000, 10_000_099) as body:
        assert body.read() == data[10_000_000:10_000_100]
    with store.open("job_big.mp4") as body:
        assert hashlib.sha256(body.read()).hexdigest() == hashlib.sha256(data).hexdigest()
