"""The simulator's FLUX 3 video tasks and its newer BFL behaviours: Pending, Reasoning, Generating, then a real
MP4 with audio from a URL valid 2 hours, a draft cache for drafts, a per-model limit, 503s, poll redirects,
and images at the requested size that look like generations."""

from __future__ import annotations

import io
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from devtools.processes import wait_until
from fluxhook.media.video import inspect
from simulator_helpers import KEY, set_settings, stats, submit, submit_ok, task_state

# Each test on the module's simulator (tests/unit/simulator/conftest.py), reset to its start-up settings.
pytestmark = pytest.mark.usefixtures("fresh")

VIDEO = "flux-3-video"


def poll(base: str, task_id: str) -> dict[str, Any]:
    response = requests.get(f"{base}/v1/get_result", params={"id": task_id}, headers=KEY, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_video_task_reasons_generates_and_delivers_an_mp4_valid_two_hours(base):
    set_settings(base, video_delay=1.5, video_seconds=2.0)
    task_id = submit_ok(base, "a fox runs", model=VIDEO)
    seen: list[tuple[str, float]] = []

    def ready():
        body = poll(base, task_id)
        if not seen or seen[-1][0] != body["status"]:
            seen.append((body["status"], body["progress"]))
        return body if body["status"] == "Ready" else None

    done = wait_until(ready, timeout=10, interval=0.05)
    assert [word for word, _ in seen] == ["Pending", "Reasoning", "Generating", "Ready"]
    assert [p for _, p in seen] == sorted(p for _, p in seen)
    sample = done["result"]["sample"]
    assert urlsplit(sample).path.endswith(".mp4")
    expires = int(parse_qs(urlsplit(sample).query)["exp"][0])
    assert 7190 <= expires - time.time() <= 7210
    assert "draft_cache" not in done["result"]
    data = requests.get(sample, timeout=10).content
    info = inspect(io.BytesIO(data), len(data))
    assert (info.width, info.height, info.duration, info.has_audio) == (640, 360, 2.0, True)


def test_a_video_lasts_the_seconds_it_was_charged_for(base):
    set_settings(base, video_delay=0.2)
    answer = submit(base, "a fox runs", model=VIDEO, mode="t2v", duration=6)
    assert answer.status_code == 200, answer.text
    assert answer.json()["duration"] == 6
    done = wait_until(lambda: (b := poll(base, answer.json()["id"]))["status"] == "Ready" and b, timeout=10)
    data = requests.get(done["result"]["sample"], timeout=10).content
    assert inspect(io.BytesIO(data), len(data)).duration == 6.0


@pytest.mark.parametrize("model", [VIDEO, "flux-tools/video-edit-v1"])
def test_the_control_api_shows_what_a_poll_would_report_without_counting_one(base, model):
    # The live-progress tests compare a job with the simulator's own state of its task.
    extra = {"video": "https://example.com/v.mp4"} if model != VIDEO else {}
    task_id = submit_ok(base, "a slow fox [seconds-4]", model=model, **extra)
    words = []

    def generating():
        state = task_state(base, task_id)
        if not words or words[-1] != state["reported"]["status"]:
            words.append(state["reported"]["status"])
        return state if state["reported"]["status"] == "Generating" else None

    state = wait_until(generating, timeout=10, interval=0.05)
    assert words == ["Pending", "Reasoning", "Generating"] and state["polls"] == 0
    body = poll(base, task_id)
    assert body["status"] == "Generating" and body["progress"] >= state["reported"]["progress"] >= 0.45
    done = wait_until(lambda: (s := task_state(base, task_id))["status"] == "Ready" and s, timeout=10)
    assert done["reported"] == {"status": "Ready", "progress": None}


def test_a_draft_returns_a_draft_cache_and_padding_keeps_the_mp4_valid(base):
    set_settings(base, video_delay=0.1, video_bytes=3_000_000, draft_cache_bytes=1000)
    task_id = submit_ok(base, "a draft", model=VIDEO, draft=True)
    done = wait_until(lambda: (b := poll(base, task_id))["status"] == "Ready" and b, timeout=10)
    draft = requests.get(done["result"]["draft_cache"], timeout=10)
    assert draft.status_code == 200 and len(draft.content) == 1000
    video = requests.get(done["result"]["sample"], timeout=10)
    assert video.headers["Content-Length"] == "3000000" and len(video.content) == 3_000_000
    assert inspect(io.BytesIO(video.content), len(video.content)).duration > 0


def test_video_has_its_own_active_limit(base):
    set_settings(base, video_delay=60, max_active_video=2)
    for n in range(2):
        submit_ok(base, f"video {n}", model=VIDEO)
    refused = submit(base, "one too many", model=VIDEO)
    assert refused.status_code == 429
    assert submit(base, "an image still goes").status_code == 200
    assert stats(base)["rejected_429"] == 1


def test_out_of_capacity_answers_503(base):
    set_settings(base, out_of_capacity=True)
    answer = submit(base, "no room", model=VIDEO)
    assert answer.status_code == 503 and answer.headers["Retry-After"]


def test_polls_may_be_redirected_to_a_regional_host(base):
    task_id = submit_ok(base, "[pending] redirected")
    set_settings(base, redirect_polls=True)
    moved = requests.get(f"{base}/v1/get_result", params={"id": task_id}, headers=KEY, timeout=5,
                         allow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["Location"] == f"{base}/v1/regional/get_result?id={task_id}"
    assert requests.get(moved.headers["Location"], headers=KEY, timeout=5).json()["status"] == "Pending"


def test_scene_images_are_jpegs_at_the_requested_size(base):
    set_settings(base, scene_images=True, image_format="jpeg")
    default = submit_ok(base, "a valley")
    sized = submit_ok(base, "a wide valley", width=1440, height=768)
    for task_id, size in ((default, (1024, 1024)), (sized, (1440, 768))):
        done = wait_until(lambda task_id=task_id: (b := poll(base, task_id))["status"] == "Ready" and b, timeout=10)
        data = requests.get(done["result"]["sample"], timeout=10).content
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("JPEG", size)
        assert len(data) > 20_000  # a picture, not a swatch
