"""A stored job's thumbnail (fluxhook/lifecycle/steps/thumbnailing.py), on a real Redis and a real directory: a WebP preview
of the stored image, or of a video's poster frame, recorded on the job once; best effort: a job not stored, gone, or
whose file is missing or no image gets none, and nothing fails. The preview's bytes: tests/unit/media/."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.thumbnailing import make_for_job
from fluxhook.media import thumbnails

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _png(width: int = 600, height: int = 300) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _job(svc, status: str = st.STORED, stored: bytes | None = None, poster: bytes | None = None) -> Job:
    """A job moved to ``status``; once stored, its file holds ``stored`` (and its poster frame ``poster``: a video)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, model="flux-2-pro", bfl_id=new_job_id(),
                                 created_at=now, updated_at=now, submitted_at=now))
    svc.jobs.transition(job.id, st.READY, result_url="https://delivery.fluxhook-test.invalid/result")
    if status != st.STORED:
        return svc.jobs.get(job.id)
    key = f"{job.id}.{'mp4' if poster is not None else 'png'}"
    svc.storage.put(key, io.BytesIO(stored if stored is not None else _png()))
    result = {"sha256": "x", "size": 1}
    if poster is None:
        svc.jobs.transition(job.id, st.STORED, storage_key=key, image=result)
    else:
        svc.storage.put(f"{job.id}-poster.png", io.BytesIO(poster))
        svc.jobs.transition(job.id, st.STORED, storage_key=key, video=dict(result, duration=1.0),
                            poster={"key": f"{job.id}-poster.png"})
    return svc.jobs.get(job.id)


def _thumbnail(svc, job_id: str) -> Image.Image | None:
    stored = svc.storage.open(thumbnails.key_for(job_id))
    if stored is None:
        return None
    with stored:
        return Image.open(io.BytesIO(stored.read()))


def test_a_stored_images_thumbnail_is_a_small_webp_recorded_on_the_job_once(svc):
    job = _job(svc)

    assert make_for_job(svc, job.id) == thumbnails.key_for(job.id)

    made = _thumbnail(svc, job.id)
    assert made.format == "WEBP" and max(made.size) <= thumbnails.MAX_SIDE and made.size[0] > made.size[1]
    assert svc.jobs.get(job.id).thumbnail_key == thumbnails.key_for(job.id)
    assert make_for_job(svc, job.id) is None  # it has one


def test_a_videos_thumbnail_is_made_from_its_poster_frame(svc):
    job = _job(svc, stored=b"\x00\x00\x00\x18ftypmp42 not decoded here", poster=_png(320, 640))

    assert make_for_job(svc, job.id) == thumbnails.key_for(job.id)

    made = _thumbnail(svc, job.id)
    assert made.format == "WEBP" and made.size[1] > made.size[0]  # the poster's shape, not the MP4's


def test_a_job_not_stored_or_gone_gets_no_thumbnail(svc):
    ready = _job(svc, st.READY)

    assert make_for_job(svc, ready.id) is None
    assert make_for_job(svc, new_job_id()) is None

    assert _thumbnail(svc, ready.id) is None and svc.jobs.get(ready.id).thumbnail_key is None


def test_a_file_that_is_no_image_or_is_missing_gets_no_thumbnail_and_the_job_stays_stored(svc):
    garbled = _job(svc, stored=b"these bytes are no image")
    missing = _job(svc)
    svc.storage.delete(missing.storage_key)

    assert make_for_job(svc, garbled.id) is None
    assert make_for_job(svc, missing.id) is None

    for job in (garbled, missing):
        after = svc.jobs.get(job.id)
        assert (after.status, after.thumbnail_key) == (st.STORED, None)
        assert _thumbnail(svc, job.id) is None
