"""Video results through the Procfile's processes: an MP4 delivered by an allowlisted host is
sniffed, probed, stored with a poster, and served with byte ranges, ETags and signed URLs; MP4s that lie
fail with ``not_an_image`` or ``too_large`` and leave nothing in storage."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import warnings

import pytest
import requests
from PIL import Image

from conftest import MAX_VIDEO_BYTES, ready_payload
from helpers import assert_error
from mp4_samples import free_box, make_mp4

MP4 = make_mp4(seconds=3, width=320, height=180)


def deliver(api, url: str) -> dict:
    job = api.submit("[pending] a video")
    answer = api.callback(job["id"], ready_payload(job["bfl_id"], url))
    assert answer.status_code == 200, answer.text
    return api.wait_for(job["id"])


def stored(stack, job_id: str) -> list[str]:
    from pathlib import Path
    folder = Path(stack.env["STORAGE_URL"].removeprefix("file://"))
    return sorted(p.name for p in folder.glob(f"{job_id}*"))


@pytest.fixture(scope="module")
def video_job(stack, _spies):
    from conftest import API
    api, spy = API(stack.base_url), _spies[0]
    url = spy.route("/video-module.mp4", body=MP4, headers={"Content-Type": "application/octet-stream"})
    job = deliver(api, url)
    assert job["status"] == "stored", job
    return job


def test_an_mp4_is_stored_as_a_video_with_a_poster(video_job, api, stack):
    video = video_job["video"]
    assert video_job["image"] is None
    assert {k: video[k] for k in ("content_type", "size", "sha256", "width", "height", "duration", "fps",
                                  "has_audio")} == {
        "content_type": "video/mp4", "size": len(MP4), "sha256": hashlib.sha256(MP4).hexdigest(),
        "width": 320, "height": 180, "duration": 3.0, "fps": 24.0, "has_audio": True}
    assert video["url"].startswith(f"{api.base_url}/v1/jobs/{video_job['id']}/video?token=")
    assert video["poster_url"].startswith(f"{api.base_url}/v1/jobs/{video_job['id']}/poster?token=")
    assert {f"{video_job['id']}-poster.jpg", f"{video_job['id']}.mp4"} <= set(stored(stack, video_job["id"]))


def test_the_video_is_served_whole_and_by_ranges(video_job, api):
    path = f"/v1/jobs/{video_job['id']}/video"
    whole = api.get(path)
    assert whole.status_code == 200 and whole.content == MP4
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"] == f'"{video_job["video"]["sha256"]}"'

    part = api.get(path, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == MP4[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(MP4)}"
    assert part.headers["Content-Length"] == "1000"

    tail = api.get(path, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == MP4[-10:]
    rest = api.get(path, headers={"Range": f"bytes={len(MP4) - 5}-"})
    assert rest.status_code == 206 and rest.content == MP4[-5:]

    outside = api.get(path, headers={"Range": f"bytes={len(MP4)}-"})
    assert_error(outside, 416, "range_not_satisfiable")
    assert outside.headers["Content-Range"] == f"bytes */{len(MP4)}"

    # If-Range with another version's ETag: the whole (current) file.
    other = api.get(path, headers={"Range": "bytes=0-9", "If-Range": '"not-this-one"'})
    assert other.status_code == 200 and other.content == MP4
    same = api.get(path, headers={"Range": "bytes=0-9", "If-Range": whole.headers["ETag"]})
    assert same.status_code == 206 and same.content == MP4[:10]

    cached = api.get(path, headers={"If-None-Match": whole.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""


def _open_files(name: str) -> list[str]:
    """This process's open files whose path ends with ``name``."""
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # closed since the listing
    return [p for p in paths if p.endswith(name)]


def test_head_answers_the_headers_and_closes_the_file(video_job, stack):
    from conftest import API_TOKEN
    from fluxhook.core.config import Config
    from receiver import create_app

    # The app in this process, on the stack's Redis and store, so its open files can be seen.
    client = create_app(Config.from_env(stack.env)).test_client()
    job_id = video_job["id"]
    for name, file, size in (("video", f"{job_id}.mp4", len(MP4)), ("poster", f"{job_id}-poster.jpg", None)):
        # A file dropped unclosed is closed by the garbage collector, which warns: that is the leak seen. What the
        # process's earlier tests left for the collector is collected first, so the warnings seen are the HEAD's.
        gc.collect()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", ResourceWarning)
            answer = client.head(f"/v1/jobs/{job_id}/{name}", headers={"Authorization": f"Bearer {API_TOKEN}"})
            assert answer.status_code == 200 and answer.data == b""
            assert answer.headers["Accept-Ranges"] == "bytes"
            if size is not None:
                assert answer.headers["Content-Length"] == str(size)
            answer.close()  # as the server does once it has sent the headers
            del answer
            gc.collect()
        assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == [], name
        assert _open_files(file) == [], name


def test_signed_urls_work_without_a_token_and_for_no_other_job(video_job, api):
    video, poster = video_job["video"]["url"], video_job["video"]["poster_url"]
    answer = requests.get(video, headers={"Range": "bytes=0-99"}, timeout=10)
    assert answer.status_code == 206 and answer.content == MP4[:100]
    picture = requests.get(poster, timeout=10)
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(picture.content)).size == (320, 180)
    token = video.split("token=")[1]
    other = api.submit("[pending] someone else")
    refused = requests.get(f"{api.base_url}/v1/jobs/{other['id']}/video?token={token}", timeout=10)
    assert_error(refused, 401, "unauthorized")
    assert_error(requests.get(video.split("?")[0], timeout=10), 401, "unauthorized")


def test_files_a_job_does_not_have(video_job, api, spy):
    assert_error(api.get(f"/v1/jobs/{video_job['id']}/image"), 410)
    assert_error(api.get(f"/v1/jobs/{video_job['id']}/draft_cache"), 410)
    pending = api.submit("[pending] not yet")
    assert_error(api.get(f"/v1/jobs/{pending['id']}/video"), 404, "not_ready")
    assert_error(api.get(f"/v1/jobs/{pending['id']}/poster"), 404, "not_ready")
    from helpers import serve_png
    image = deliver(api, serve_png(spy, "an-image"))
    assert image["status"] == "stored" and image["video"] is None
    assert_error(api.get(f"/v1/jobs/{image['id']}/video"), 410)


def test_deleting_the_job_removes_video_and_poster(api, spy, stack):
    job = deliver(api, spy.route("/to-delete.mp4", body=MP4))
    assert job["status"] == "stored"
    assert len(stored(stack, job["id"])) >= 2
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert [name for name in stored(stack, job["id"]) if not name.endswith("-thumb.webp")] == []


@pytest.mark.parametrize("body", [
    pytest.param(MP4[:32] + b"\x5a" * 20_000, id="ftyp-then-garbage"),
    pytest.param(MP4[:len(MP4) * 2 // 3], id="truncated"),
    pytest.param(MP4 + b"appended", id="appended"),
])
def test_an_mp4_that_lies_is_not_an_image(api, sim, spy, stack, body):
    job = deliver(api, spy.route("/lies.mp4", body=body, headers={"Content-Type": "video/mp4"}))

    assert (job["status"], job["error"]["code"]) == ("failed", "not_an_image")
    assert job["video"] is None and job["image"] is None
    assert stored(stack, job["id"]) == []


def test_a_video_over_the_limit_streamed_without_content_length_is_too_large(api, sim, spy, stack):
    pieces = [MP4] + [free_box(1 << 20)[:1 << 20] for _ in range(MAX_VIDEO_BYTES // (1 << 20) + 2)]
    job = deliver(api, spy.route("/huge.mp4", body=pieces))

    assert (job["status"], job["error"]["code"]) == ("failed", "too_large")
    assert stored(stack, job["id"]) == []


def test_a_video_at_the_limit_is_stored(api, sim, spy):
    body = MP4 + free_box(MAX_VIDEO_BYTES - len(MP4))
    job = deliver(api, spy.route("/at-limit.mp4", body=body))

    assert job["status"] == "stored", job
    assert job["video"]["size"] == MAX_VIDEO_BYTES
