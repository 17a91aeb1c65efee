"""The BFL-compatible API's answers (fluxhook/lifecycle/steps/bfl_presenting.py; pure): get_result's words and shape for each
job status, and the submission's answer."""

from __future__ import annotations

import pytest

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import bfl_presenting

ENV = {"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-aaaaaaaa",
       "PUBLIC_BASE_URL": "https://fluxhook.example", "NOTIFY_HOST_ALLOWLIST": "hooks.example.com,127.0.0.1:9999"}
CONFIG = Config.from_env(ENV)
IMAGE = {"key": "k", "content_type": "image/jpeg", "size": 10, "sha256": "ab" * 32, "width": 4, "height": 4}
VIDEO = {**IMAGE, "content_type": "video/mp4", "duration": 5.0, "fps": 24.0, "has_audio": True}


def _job(status: str, **fields) -> Job:
    return Job(id=new_job_id(), status=status, model="flux-2-pro", prompt="a fox", **fields)


@pytest.mark.parametrize(("status", "bfl_status", "word"), [
    (st.QUEUED, None, "Pending"),
    (st.SUBMITTED, "Pending", "Pending"),
    (st.SUBMITTED, "Reasoning", "Reasoning"),  # FLUX 3 video's running words pass through
    (st.SUBMITTED, "Generating", "Generating"),
    (st.READY, "Ready", "Pending"),  # BFL is done, fluxhook is not: the file is not stored yet
    (st.READY, "Generating", "Generating"),
    (st.FAILED, "Error", "Error"),
    (st.EXPIRED, "Ready", "Error"),
    (st.MODERATED, "Request Moderated", "Request Moderated"),
    (st.MODERATED, "Content Moderated", "Content Moderated"),
])
def test_a_job_that_is_not_stored_is_never_ready(status, bfl_status, word):
    job = _job(status, bfl_status=bfl_status, progress=0.4 if not st.TERMINAL & {status} else None,
               error={"code": "bfl_error", "message": "boom"} if status in st.TERMINAL else None)
    body = bfl_presenting.result(CONFIG, job)
    assert set(body) == {"id", "status", "result", "progress", "details", "preview"}
    assert (body["id"], body["status"], body["result"]) == (job.id, word, None)
    if status in st.TERMINAL:
        assert body["details"] == {"code": "bfl_error", "message": "boom"} and body["progress"] is None
    else:
        assert body["progress"] == 0.4 and body["details"] is None


def test_a_video_downloading_after_bfls_ready_shows_its_last_running_word_never_pending_again():
    # The polled video edit showed Pending between Reasoning and Ready while its file downloaded.
    job = _job(st.READY, bfl_status="Ready", bfl_running="Generating", progress=0.97)
    body = bfl_presenting.result(CONFIG, job)
    assert (body["status"], body["progress"], body["result"]) == ("Generating", 0.97, None)
    # Back to submitted where BFL refuted that Ready: still the last running word, not an earlier one.
    job = _job(st.SUBMITTED, bfl_status="Pending", bfl_running="Generating", progress=0.97)
    assert bfl_presenting.result(CONFIG, job)["status"] == "Generating"


def test_a_stored_image_is_ready_with_fluxhooks_signed_link_its_prompt_and_seed():
    job = _job(st.STORED, bfl_status="Ready", image=IMAGE, seed=42)
    body = bfl_presenting.result(CONFIG, job)
    assert body["status"] == "Ready" and body["details"] is None
    sample = body["result"]["sample"]
    assert sample.startswith(f"https://fluxhook.example/v1/jobs/{job.id}/image?token=")
    assert (body["result"]["prompt"], body["result"]["seed"]) == ("a fox", 42)
    assert "draft_cache" not in body["result"]


def test_a_stored_video_links_the_video_and_its_draft_cache():
    job = _job(st.STORED, video=VIDEO, draft_cache={"key": "d", "size": 3, "sha256": "cd" * 32})
    result = bfl_presenting.result(CONFIG, job)["result"]
    assert f"/v1/jobs/{job.id}/video?token=" in result["sample"]
    assert f"/v1/jobs/{job.id}/draft_cache?token=" in result["draft_cache"]
    assert result["duration"] == 5.0


def test_the_submission_answer_has_bfls_fields_with_the_price_once_bfl_said_it():
    queued = _job(st.QUEUED)
    assert bfl_presenting.submission(CONFIG, queued) == {
        "id": queued.id, "polling_url": f"https://fluxhook.example/v1/get_result?id={queued.id}",
        "cost": None, "input_mp": None, "output_mp": None}
    sent = _job(st.SUBMITTED, cost_credits=3.0, cost_input_mp=0.0, cost_output_mp=1.0)
    assert bfl_presenting.submission(CONFIG, sent)["cost"] == 3.0
    assert bfl_presenting.not_found("nope") == {"id": "nope", "status": "Task not found"}
