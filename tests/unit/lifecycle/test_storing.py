"""Each result URL's life: 10 minutes for an image, about 2 hours for a video. A URL past its life is
not fetched (BFL is asked for a fresh one); within it, a delivery host failing for a while is retried.
A stored job's thumbnail (a small WebP of its image, or of a video's poster frame, recorded on the job once) is made
by the same task, once the job is stored, and by its retry if the task was cut off in between; one that cannot be
made (a file missing or no image) fails nothing, and a job that ended otherwise or is gone gets none. The preview's
bytes: tests/unit/media/. In-process downloads on their own Redis database, with a
spy host as BFL and as the delivery host."""

from __future__ import annotations

import io
import json
import time

import pytest
from PIL import Image

from fluxhook.core import job as st
from fluxhook.core import stopping
from fluxhook.core.errors import TransientDownloadError
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import DownloadOutcome
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.storing import download_and_store
from fluxhook.media import thumbnails
from fluxhook.store.keys import KEYS
from fluxhook.store.work_lines import DOWNLOAD
from helpers import commands_during, png_bytes
from mp4_samples import make_mp4

MP4 = make_mp4(seconds=1, width=128, height=72)


@pytest.fixture()
def svc(make_services, spy):
    return make_services(7, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def _ready(svc, model: str, url: str, finished_ago: float) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), status=st.READY, model=model, bfl_id=f"task-{now}", account="default", result_url=url,
              created_at=now - finished_ago - 60, updated_at=now, submitted_at=now - finished_ago - 60,
              finished_at=now - finished_ago)
    svc.jobs.create(job)
    return job


def test_an_image_url_past_its_ten_minutes_is_not_fetched_bfl_gives_a_fresh_one(svc, spy):
    old = spy.route("/old.png", body=png_bytes())
    fresh = spy.route("/fresh.png", body=png_bytes())
    job = _ready(svc, "flux-2-pro", old, finished_ago=11 * 60)
    spy.route(f"/v1/get_result?id={job.bfl_id}",
              body=json.dumps({"id": job.bfl_id, "status": "Ready", "result": {"sample": fresh}}).encode())

    assert download_and_store(svc, job.id, last_attempt=False) == st.STORED

    assert "/old.png" not in spy.hits and "/fresh.png" in spy.hits


def test_a_video_url_eleven_minutes_old_is_still_fetched(svc, spy):
    url = spy.route("/video.mp4", body=MP4)
    job = _ready(svc, "flux-3-video", url, finished_ago=11 * 60)

    assert download_and_store(svc, job.id, last_attempt=False) == st.STORED

    assert spy.hits == ["/video.mp4"]
    assert svc.jobs.get(job.id).video["duration"] == 1.0


def test_a_failing_host_is_retried_within_a_video_urls_life_and_not_after(svc, spy):
    url = spy.route("/busy.mp4", status=503, body=b"busy")
    young = _ready(svc, "flux-3-video", url, finished_ago=90 * 60)
    with pytest.raises(TransientDownloadError):
        download_and_store(svc, young.id, last_attempt=False)
    assert svc.jobs.get(young.id).status == st.READY  # RQ retries it

    image = _ready(svc, "flux-2-pro", url, finished_ago=5 * 60)
    with pytest.raises(TransientDownloadError):
        download_and_store(svc, image.id, last_attempt=False)
    assert svc.jobs.get(image.id).status == st.READY


def test_a_download_the_stopping_worker_wants_back_stays_ready_and_says_it_was_handed_back(svc, spy):
    job = _ready(svc, "flux-2-pro", spy.route("/image.png", body=png_bytes()), finished_ago=5)
    stopping.REQUESTED.set()
    try:
        with pytest.raises(stopping.StopRequested):
            download_and_store(svc, job.id, last_attempt=True)  # even a last attempt: a stop is not a failure
    finally:
        stopping.REQUESTED.clear()

    assert svc.jobs.get(job.id).status == st.READY
    [entry] = [e for e in timeline.recent(svc.store.timeline, job.id) if e["kind"] == "download"]
    assert entry["outcome"] == DownloadOutcome.HANDED_BACK


# -- the thumbnail, made by the download task once its job is stored ----------------------------------------------

def _thumbnail_of(svc, job_id: str) -> bytes | None:
    stored = svc.storage.open(thumbnails.key_for(job_id))
    if stored is None:
        return None
    with stored:
        return stored.read()


def test_a_stored_image_gets_its_thumbnail_in_the_same_task(svc, spy):
    job = _ready(svc, "flux-2-pro", spy.route("/with-thumb.png", body=png_bytes()), finished_ago=5)

    assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.STORED

    assert svc.jobs.get(job.id).thumbnail_key == thumbnails.key_for(job.id)
    assert _thumbnail_of(svc, job.id)[:4] == b"RIFF"  # a WebP
    assert svc.store.work.waiting(DOWNLOAD) == 0 and svc.queue.count == 0  # no task of its own


def test_a_task_cut_off_after_storing_makes_the_thumbnail_when_rq_runs_it_again(svc, spy):
    job = _ready(svc, "flux-2-pro", spy.route("/cut-off.png", body=png_bytes()), finished_ago=5)
    assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.STORED
    # As if its worker had been killed between the job's change to stored and its thumbnail.
    svc.redis.hdel(KEYS.job(job.id), "thumbnail_key")
    svc.storage.delete(thumbnails.key_for(job.id))
    spy.hits.clear()

    assert download_and_store(svc, job.id, last_attempt=True) == DownloadOutcome.SKIPPED  # RQ's retry

    assert spy.hits == []  # nothing downloaded again
    after = svc.jobs.get(job.id)
    assert (after.status, after.thumbnail_key) == (st.STORED, thumbnails.key_for(job.id))
    assert _thumbnail_of(svc, job.id) is not None


def test_a_thumbnail_that_cannot_be_made_leaves_the_job_stored_and_the_task_succeeded(svc, spy):
    whole = io.BytesIO()
    Image.effect_noise((256, 256), 60).save(whole, "PNG")
    truncated = whole.getvalue()[:2000]  # a PNG, as its first bytes say, but its pixels cut short
    job = _ready(svc, "flux-2-pro", spy.route("/truncated.png", body=truncated), finished_ago=5)

    assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.STORED

    after = svc.jobs.get(job.id)
    assert (after.status, after.thumbnail_key) == (st.STORED, None)
    assert _thumbnail_of(svc, job.id) is None


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _stored(svc, stored: bytes | None = None, poster: bytes | None = None) -> Job:
    """A job stored by an attempt cut off before its thumbnail: its file holds ``stored`` (and its poster frame
    ``poster``: a video)."""
    job = _ready(svc, "flux-2-pro", "https://delivery.fluxhook-test.invalid/result", finished_ago=5)
    key = f"{job.id}.{'mp4' if poster is not None else 'png'}"
    svc.storage.put(key, io.BytesIO(stored if stored is not None else _png(600, 300)))
    result = {"sha256": "x", "size": 1}
    if poster is None:
        svc.jobs.transition(job.id, st.STORED, storage_key=key, image=result)
    else:
        svc.storage.put(f"{job.id}-poster.png", io.BytesIO(poster))
        svc.jobs.transition(job.id, st.STORED, storage_key=key, video=dict(result, duration=1.0),
                            poster={"key": f"{job.id}-poster.png"})
    return svc.jobs.get(job.id)


def _image(svc, job_id: str) -> Image.Image:
    return Image.open(io.BytesIO(_thumbnail_of(svc, job_id)))


def test_a_stored_images_thumbnail_is_a_small_webp_recorded_on_the_job_once(svc, spy):
    job = _stored(svc)

    assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.SKIPPED

    made = _image(svc, job.id)
    assert made.format == "WEBP" and max(made.size) <= thumbnails.MAX_SIDE and made.size[0] > made.size[1]
    assert svc.jobs.get(job.id).thumbnail_key == thumbnails.key_for(job.id)
    svc.storage.delete(thumbnails.key_for(job.id))
    download_and_store(svc, job.id, last_attempt=False)
    assert _thumbnail_of(svc, job.id) is None  # it has one: not made again
    assert spy.hits == []


def test_a_videos_thumbnail_is_made_from_its_poster_frame(svc):
    job = _stored(svc, stored=b"\x00\x00\x00\x18ftypmp42 not decoded here", poster=_png(320, 640))

    download_and_store(svc, job.id, last_attempt=False)

    made = _image(svc, job.id)
    assert made.format == "WEBP" and made.size[1] > made.size[0]  # the poster's shape, not the MP4's


def test_a_job_that_ended_otherwise_or_is_gone_gets_no_thumbnail(svc):
    failed = _ready(svc, "flux-2-pro", "https://delivery.fluxhook-test.invalid/result", finished_ago=5)
    svc.jobs.transition(failed.id, st.FAILED, error={"code": "x", "message": "x"})

    assert download_and_store(svc, failed.id, last_attempt=False) == DownloadOutcome.SKIPPED
    assert download_and_store(svc, new_job_id(), last_attempt=False) == DownloadOutcome.SKIPPED

    assert _thumbnail_of(svc, failed.id) is None and svc.jobs.get(failed.id).thumbnail_key is None


def test_a_file_that_is_no_image_or_is_missing_gets_no_thumbnail_and_the_job_stays_stored(svc):
    garbled = _stored(svc, stored=b"these bytes are no image")
    missing = _stored(svc)
    svc.storage.delete(missing.storage_key)

    for job in (garbled, missing):
        assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.SKIPPED
        after = svc.jobs.get(job.id)
        assert (after.status, after.thumbnail_key) == (st.STORED, None)
        assert _thumbnail_of(svc, job.id) is None


def test_a_download_reads_its_job_once_counting_its_attempt_and_its_thumbnail_reads_it_not_again(svc, spy):
    url = spy.route("/once.png", body=png_bytes())
    job = _ready(svc, "flux-2-pro", url, finished_ago=5)

    commands = [c["command"] for c in commands_during(svc.redis, 7, lambda: download_and_store(
        svc, job.id, last_attempt=False))]

    stored = svc.jobs.get(job.id)
    assert stored.status == st.STORED and stored.thumbnail_key == thumbnails.key_for(job.id)
    assert stored.downloads == 1  # the attempt, counted with the read it started with
    # Read twice in all: the download's read, and the read of the step that ends the job stored (which makes the
    # record anew from it); not by the thumbnail.
    reads = [c for c in commands if c.startswith((f"HGETALL {KEYS.job(job.id)}", f"HMGET {KEYS.job(job.id)} "))]
    assert len(reads) == 2, commands
    assert [c for c in commands if c.startswith(f"HINCRBY {KEYS.job(job.id)}")] == \
        [f"HINCRBY {KEYS.job(job.id)} downloads 1"]


def test_a_stored_job_records_the_store_its_files_went_to_however_long_its_name(make_services, spy, tmp_path):
    # A folder's path longer than a compact hash value (64 bytes): kept in pieces, the record stays compact.
    deep = tmp_path / ("a-folder-deep-down-" * 4) / "images"
    svc = make_services(7, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}",
                        STORAGE_URL=f"file://{deep}")
    assert len(svc.storage.location) > 64
    job = _ready(svc, "flux-2-pro", spy.route("/where.png", body=png_bytes()), finished_ago=5)

    assert download_and_store(svc, job.id, last_attempt=False) == DownloadOutcome.STORED

    assert svc.jobs.get(job.id).stored_in == svc.storage.location == f"file://{deep}"
    assert svc.redis.object("encoding", KEYS.job(job.id)) in (b"listpack", b"ziplist")
