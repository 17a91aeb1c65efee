"""Draft caches (SPEC §3, §4): ``result.draft_cache`` is downloaded beside the sample with the same safety
rules and the video size limit, served from ``/draft_cache``, listed in the job; one that cannot be had
fails nothing and says why on the job's timeline. Through the Procfile's processes and spy hosts."""

from __future__ import annotations

import hashlib
import os

import redis
import requests

from conftest import MAX_VIDEO_BYTES
from fluxhook import timeline
from fluxhook.store.timeline import TimelineStore
from helpers import assert_error
from mp4_samples import make_mp4

MP4 = make_mp4(seconds=1, width=160, height=96)
BUNDLE = os.urandom(300_000)


def deliver(api, sample: str, draft: str) -> dict:
    job = api.submit("[pending] a draft")
    payload = {"id": job["bfl_id"], "status": "Ready", "result": {"sample": sample, "draft_cache": draft, "seed": 7}}
    answer = api.callback(job["id"], payload)
    assert answer.status_code == 200, answer.text
    return api.wait_for(job["id"])


def entries(stack, job_id: str) -> list[dict]:
    return timeline.recent(TimelineStore(redis.Redis.from_url(stack.env["REDIS_URL"])), job_id)


def test_a_draft_cache_is_stored_beside_the_sample_and_served(api, sim, spy, stack):
    job = deliver(api, spy.route("/draft.mp4", body=MP4), spy.route("/draft.bundle", body=BUNDLE))

    assert job["status"] == "stored", job
    cache = job["draft_cache"]
    assert {k: cache[k] for k in ("size", "sha256")} == {"size": len(BUNDLE),
                                                         "sha256": hashlib.sha256(BUNDLE).hexdigest()}
    assert cache["url"].startswith(f"{api.base_url}/v1/jobs/{job['id']}/draft_cache?token=")
    whole = requests.get(cache["url"], timeout=10)
    assert whole.status_code == 200 and whole.content == BUNDLE
    assert whole.headers["Content-Type"] == "application/octet-stream"
    part = api.get(f"/v1/jobs/{job['id']}/draft_cache", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == BUNDLE[1000:2000]
    assert any(e["kind"] == "draft_cache" and e["outcome"] == "stored" for e in entries(stack, job["id"]))


def test_a_draft_cache_off_the_allowlist_is_not_fetched_and_fails_nothing(api, sim, spy, unlisted_spy, stack):
    draft = unlisted_spy.route("/stolen.bundle", body=BUNDLE)

    job = deliver(api, spy.route("/sample.mp4", body=MP4), draft)

    assert job["status"] == "stored" and job["video"] is not None
    assert job["draft_cache"] is None
    assert unlisted_spy.hits == []
    skipped = [e for e in entries(stack, job["id"]) if e["kind"] == "draft_cache"]
    assert [(e["outcome"], e["error"]) for e in skipped] == [("skipped", "host_not_allowed")]
    assert_error(api.get(f"/v1/jobs/{job['id']}/draft_cache"), 410)


def test_a_draft_cache_over_the_video_limit_or_gone_is_skipped(api, sim, spy, stack):
    too_large = deliver(api, spy.route("/a.mp4", body=MP4),
                        spy.route("/huge.bundle", body=[b"\0" * (1 << 20)] * (MAX_VIDEO_BYTES // (1 << 20) + 1)))
    gone = deliver(api, spy.route("/b.mp4", body=MP4), spy.route("/expired.bundle", status=403, body=b"expired"))

    for job, code in ((too_large, "too_large"), (gone, "result_expired")):
        assert job["status"] == "stored" and job["draft_cache"] is None, job
        assert [e.get("error") for e in entries(stack, job["id"]) if e["kind"] == "draft_cache"] == [code]
