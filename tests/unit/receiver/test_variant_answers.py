"""Variants of a stored image over HTTP (docs/api.md, receiver/variants.py) on an in-process app (its Flask test client)
over a Redis database of its own: a bad ``w``, ``format`` or ``q`` answered 400 naming it and what is allowed; each
answer's ETag, 304, Cache-Control (public for a signed link, private for a bearer token) and Vary; ``auto`` by
Accept; ``srcset`` in the job's JSON; key A's variants made and served while key B gets 404 for them and its own
reads are unchanged; a poster's variants."""

from __future__ import annotations

import hashlib
import io
import time
from urllib.parse import urlsplit

import pytest
from PIL import Image

from conftest import API_TOKEN
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.variants import WIDTHS
from fluxhook.lifecycle.key_admin import create_key
from receiver import create_app

DB = 6  # the unit tests' in-process apps' database (flushed before and after each test)
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def _jpeg(size=(1024, 768)) -> bytes:
    out = io.BytesIO()
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture()
def app(make_services):
    svc = make_services(DB)
    return svc, create_app(services=svc).test_client()


def _key(svc, name: str) -> tuple[str, dict]:
    key, secret = create_key(svc, {"name": name}, time.time())
    return key.id, {"Authorization": f"Bearer {secret}"}


def _stored(svc, key_id: str | None, data: bytes | None = None, *, video: bool = False) -> Job:
    data = data or _jpeg()
    now = time.time()
    job_id = new_job_id(now)
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    digest = hashlib.sha256(data).hexdigest()
    described = {"size": len(data), "sha256": digest, "width": width, "height": height}
    if video:
        files = {"video": {**described, "content_type": "video/mp4", "duration": 1.0, "fps": 24.0,
                           "has_audio": False, "size": 10, "sha256": "0" * 64},
                 "poster": {"key": f"{job_id}-poster.jpg", "size": len(data), "sha256": digest,
                            "content_type": "image/jpeg"}, "storage_key": f"{job_id}.mp4"}
        svc.storage.put(f"{job_id}-poster.jpg", io.BytesIO(data))
    else:
        files = {"image": {**described, "content_type": "image/jpeg"}, "storage_key": f"{job_id}.jpg"}
        svc.storage.put(f"{job_id}.jpg", io.BytesIO(data))
    job = Job(id=job_id, status=st.STORED, model="flux-2-pro", created_at=now, updated_at=now, completed_at=now,
              key_id=key_id, **files)
    svc.jobs.create(job)
    return job


def _signed(svc, job: Job, query: str, kind: str = "image") -> str:
    return f"/v1/jobs/{job.id}/{kind}?token={signing.file_token(svc.config.secret_keys, job.id, kind)}&{query}"


@pytest.mark.parametrize(("query", "named"), [
    ("w=abc", "'w'"), ("w=0", "'w'"), ("w=4096", "'w'"), ("w=-5", "'w'"), ("w=512&w=640", "'w' is given 2 times"),
    ("format=gif", "'format'"), ("format=", "'format'"), ("q=80", "'q'"), ("q=high", "'q'"),
    # One spelling each: what int() and lower() used to take, and int()'s digit limit (a 500 once).
    ("w=+512", "'w'"), ("w=%2B512", "'w'"), ("w=%20512", "'w'"), ("w=0512", "'w'"), ("q=075", "'q'"), ("format=JPEG", "'format'"),
    ("w=" + "9" * 5000, "'w'"), ("q=" + "7" * 4301, "'q'"),
])
def test_a_bad_value_is_refused_400_naming_it_and_what_is_allowed(app, query, named):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a)

    answer = client.get(f"/v1/jobs/{job.id}/image?{query}", headers=as_a)

    assert answer.status_code == 400, answer.text
    error = answer.get_json()["error"]
    assert set(answer.get_json()) == {"error"} and set(error) == {"code", "message"}
    assert error["code"] == "invalid_variant"
    assert named in error["message"]
    allowed = {"w": "2048", "format": "jpeg, png, webp, avif or auto", "q": "50, 75, 90"}[named.split("'")[1]]
    assert allowed in error["message"], error["message"]


@pytest.mark.parametrize("kind", ["image", "poster"])
def test_a_query_parameter_a_variant_does_not_take_is_refused_by_name_and_the_signed_links_is_taken(app, kind):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a, video=kind == "poster")

    for query in ("w=512&width=512", "width=512", "W=512"):
        answer = client.get(f"/v1/jobs/{job.id}/{kind}?{query}", headers=as_a)
        assert answer.status_code == 400, (query, answer.text)
        error = answer.get_json()["error"]
        assert error["code"] == "unknown_field" and f"'{query.split('=')[-2].split('&')[-1]}'" in error["message"]
    signed = client.get(_signed(svc, job, "w=64&format=webp", kind=kind))
    assert signed.status_code == 200 and signed.headers["Content-Type"] == "image/webp"
    assert client.get(_signed(svc, job, "w=64&cache=bust", kind=kind)).status_code == 400


def test_a_variant_is_snapped_up_never_above_the_original_and_keeps_its_aspect(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a)  # 1024 x 768

    for asked, width in ((100, 128), (512, 512), (513, 640), (1000, 1024), (2000, 1024)):
        answer = client.get(f"/v1/jobs/{job.id}/image?w={asked}&format=webp", headers=as_a)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(answer.data)) as made:
            assert made.format == "WEBP"
            assert made.size == (width, round(768 * width / 1024)), (asked, made.size)


def test_each_answer_has_a_strong_etag_of_its_bytes_and_a_304(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a)

    first = client.get(f"/v1/jobs/{job.id}/image?w=256&format=avif&q=50", headers=as_a)
    assert first.status_code == 200
    digest = hashlib.sha256(first.data).hexdigest()
    assert first.headers["ETag"] == f'"{digest}"'  # strong: no W/
    assert first.headers["Content-Length"] == str(len(first.data))
    assert first.headers["Cache-Control"] == "private, max-age=3600, immutable"  # a bearer token's
    assert "Vary" not in first.headers

    again = client.get(f"/v1/jobs/{job.id}/image?w=256&format=avif&q=50", headers={**as_a, "If-None-Match": f'"{digest}"'})
    assert again.status_code == 304
    assert again.headers["ETag"] == f'"{digest}"'
    assert again.data == b""
    other_quality = client.get(f"/v1/jobs/{job.id}/image?w=256&format=avif&q=90", headers=as_a)
    assert other_quality.status_code == 200 and other_quality.data != first.data


def test_a_signed_links_answer_may_be_cached_by_anyone_for_a_year(app):
    svc, client = app
    key_a, _ = _key(svc, "a")
    job = _stored(svc, key_a)

    answer = client.get(_signed(svc, job, "w=512&format=webp"))

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    original = client.get(_signed(svc, job, "").rstrip("&"))
    assert original.status_code == 200
    assert original.headers["Cache-Control"] == "private, max-age=3600, immutable"  # the original, as before
    assert original.data == svc.storage.open(job.storage_key).read()


@pytest.mark.parametrize(("accept", "expected"), [
    ("image/avif,image/webp,image/apng,*/*;q=0.8", "image/avif"),
    ("image/webp,*/*", "image/webp"),
    ("image/avif;q=0,image/webp", "image/webp"),
    ("*/*", "image/jpeg"),
    (None, "image/jpeg"),
])
def test_auto_takes_avif_then_webp_as_accept_lists_them_else_the_originals_and_varies_by_accept(app, accept, expected):
    svc, client = app
    job = _stored(svc, None)

    answer = client.get(_signed(svc, job, "w=384&format=auto"), headers={"Accept": accept} if accept else {})

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == expected
    assert answer.headers["Vary"] == "Accept"
    cached = client.get(_signed(svc, job, "w=384&format=auto"),
                        headers={**({"Accept": accept} if accept else {}), "If-None-Match": answer.headers["ETag"]})
    assert cached.status_code == 304 and cached.headers["Vary"] == "Accept"


def test_the_jobs_srcset_lists_a_signed_auto_link_at_each_width_up_to_the_originals(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a)  # 1024 wide

    image = client.get(f"/v1/jobs/{job.id}", headers=as_a).get_json()["image"]

    entries = [entry.rsplit(" ", 1) for entry in image["srcset"].split(", ")]
    assert [descriptor for _, descriptor in entries] == [f"{w}w" for w in WIDTHS if w <= 1024]
    for url, descriptor in entries:
        assert url.startswith(image["url"] + "&w=") and url.endswith(f"&w={descriptor[:-1]}&format=auto")
        parts = urlsplit(url)
        served = client.get(f"{parts.path}?{parts.query}", headers={"Accept": "image/webp"})
        assert served.status_code == 200 and served.headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(served.data)) as made:
            assert made.width == int(descriptor[:-1])


def test_key_b_gets_404_for_key_as_variants_and_its_own_reads_are_unchanged(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    key_b, as_b = _key(svc, "b")
    job_a, job_b = _stored(svc, key_a), _stored(svc, key_b, _jpeg((640, 640)))

    made = client.get(f"/v1/jobs/{job_a.id}/image?w=128&format=png", headers=as_a)
    assert made.status_code == 200 and made.headers["Content-Type"] == "image/png"
    refused = client.get(f"/v1/jobs/{job_a.id}/image?w=128&format=png", headers=as_b)
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "not_found"
    wrong_link = client.get(_signed(svc, job_b, "w=128&format=png").replace(job_b.id, job_a.id, 1))
    assert wrong_link.status_code in (401, 404)

    own = client.get(f"/v1/jobs/{job_b.id}/image", headers=as_b)
    assert own.status_code == 200 and own.data == svc.storage.open(job_b.storage_key).read()
    assert svc.store.variants.take_all(job_b.id) == []  # nothing made of B's job by A's requests


def test_a_videos_poster_takes_the_same_parameters(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a, video=True)

    answer = client.get(f"/v1/jobs/{job.id}/poster?w=256&format=webp", headers=as_a)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(answer.data)) as made:
        assert made.size == (256, 192)
    bad = client.get(f"/v1/jobs/{job.id}/poster?q=10", headers=as_a)
    assert bad.status_code == 400 and "'q'" in bad.get_json()["error"]["message"]
    signed = client.get(_signed(svc, job, "w=64&format=auto", kind="poster"), headers={"Accept": "image/avif"})
    assert signed.status_code == 200 and signed.headers["Content-Type"] == "image/avif"
    assert signed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    video = client.get(f"/v1/jobs/{job.id}/video?w=256", headers=as_a)
    assert video.status_code != 400  # the video itself takes no variant parameters: they are not read there


def test_no_parameters_answer_the_original_exactly(app):
    svc, client = app
    key_a, as_a = _key(svc, "a")
    job = _stored(svc, key_a)

    answer = client.get(f"/v1/jobs/{job.id}/image", headers=as_a)

    assert answer.data == svc.storage.open(job.storage_key).read()
    assert answer.headers["ETag"] == f'"{job.image["sha256"]}"'
    assert svc.store.variants.take_all(job.id) == []
