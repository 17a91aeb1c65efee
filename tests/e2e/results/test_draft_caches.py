"""Draft caches: ``result.draft_cache`` is downloaded by a task of its own once the sample is
stored, with the same safety rules, the video size limit and retries within its URL's life, served from
``/draft_cache``, listed in the job; one that cannot be had fails nothing and says why on the job's
timeline. Through the Procfile's processes, the simulator and spy hosts."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import redis
import requests

from conftest import MAX_VIDEO_BYTES
from devtools.processes import wait_until
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.enqueueing import draft_cache_task_name
from fluxhook.store.timeline import TimelineStore
from helpers import assert_error, rq_task_ids
from mp4_samples import make_mp4

MP4 = make_mp4(seconds=1, width=160, height=96)
BUNDLE = os.urandom(300_000)


def send_ready(api, sample: str, draft: str, job: dict | None = None) -> dict:
    """A Ready callback naming ``sample`` and ``draft`` for ``job`` (a new ``[pending]`` one by default)."""
    job = job or api.submit("[pending] a draft")
    payload = {"id": job["bfl_id"], "status": "Ready", "result": {"sample": sample, "draft_cache": draft, "seed": 7}}
    answer = api.callback(job["id"], payload)
    assert answer.status_code == 200, answer.text
    return job


def deliver(api, stack, sample: str, draft: str, job: dict | None = None) -> dict:
    """The job once its draft cache task has ended (stored it or given it up)."""
    job_id = send_ready(api, sample, draft, job)["id"]
    api.wait_for(job_id)
    # Long enough for RQ's own backoff between retries (up to about 14 s for three of them).
    wait_until(lambda: drafts(stack, job_id), timeout=60, message="the draft cache task to end")
    return api.job(job_id)


def entries(stack, job_id: str) -> list[dict]:
    return timeline.recent(TimelineStore(redis.Redis.from_url(stack.env["REDIS_URL"])), job_id)


def drafts(stack, job_id: str) -> list[dict]:
    """The job's draft cache timeline entries: one when its task ends."""
    return [e for e in entries(stack, job_id) if e["kind"] == "draft_cache"]


def held(spy, path: str, body: bytes) -> threading.Event:
    """A route that answers only once the returned event is set."""
    release = threading.Event()

    def answer():
        release.wait(30)
        return 200, {}, body

    spy.route(path, body=answer)
    return release


def storage_dir(stack) -> Path:
    return Path(stack.env["STORAGE_URL"].removeprefix("file://"))


def test_a_draft_cache_is_stored_beside_the_sample_and_served(api, sim, spy, stack):
    job = deliver(api, stack, spy.route("/draft.mp4", body=MP4), spy.route("/draft.bundle", body=BUNDLE))

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

    job = deliver(api, stack, spy.route("/sample.mp4", body=MP4), draft)

    assert job["status"] == "stored" and job["video"] is not None
    assert job["draft_cache"] is None
    assert unlisted_spy.hits == []
    skipped = drafts(stack, job["id"])
    assert [(e["outcome"], e["error"]) for e in skipped] == [("skipped", "host_not_allowed")]
    assert_error(api.get(f"/v1/jobs/{job['id']}/draft_cache"), 410)


def test_a_draft_cache_over_the_video_limit_or_gone_is_skipped(api, sim, spy, stack):
    too_large = deliver(api, stack, spy.route("/a.mp4", body=MP4),
                        spy.route("/huge.bundle", body=[b"\0" * (1 << 20)] * (MAX_VIDEO_BYTES // (1 << 20) + 1)))
    # BFL (the simulator, where the task is still pending) has no fresh URL for the expired one.
    gone = deliver(api, stack, spy.route("/b.mp4", body=MP4), spy.route("/expired.bundle", status=403, body=b"expired"))

    for job, code in ((too_large, "too_large"), (gone, "result_expired")):
        assert job["status"] == "stored" and job["draft_cache"] is None, job
        assert [e.get("error") for e in drafts(stack, job["id"])] == [code]
    assert gone["attempts"]["polls"] == 1


def test_the_job_is_stored_without_waiting_for_its_draft_cache(api, sim, spy, stack):
    release = held(spy, "/slow.bundle", BUNDLE)
    job = send_ready(api, spy.route("/c.mp4", body=MP4), spy.url + "/slow.bundle")

    stored = api.wait_for(job["id"], timeout=10)
    assert stored["status"] == "stored" and stored["video"] is not None and stored["draft_cache"] is None
    assert_error(api.get(f"/v1/jobs/{job['id']}/draft_cache"), 404)
    release.set()
    wait_until(lambda: api.job(job["id"])["draft_cache"], timeout=10, message="the draft cache to be stored")

    done = api.job(job["id"])
    assert done["status"] == "stored" and done["draft_cache"]["sha256"] == hashlib.sha256(BUNDLE).hexdigest()
    assert done["completed_at"] == stored["completed_at"]
    assert api.get(f"/v1/jobs/{job['id']}/draft_cache").content == BUNDLE


def test_a_draft_host_failing_for_a_while_is_retried_until_stored(api, sim, spy, stack):
    # Three failures: more than a few tries in a row, as a host down for a minute would cause.
    answers = [(503, {}, b"busy")] * 3 + [(200, {}, BUNDLE)]
    spy.route("/flaky.bundle", body=lambda: answers.pop(0) if len(answers) > 1 else answers[0])

    job = deliver(api, stack, spy.route("/d.mp4", body=MP4), spy.url + "/flaky.bundle")

    assert job["draft_cache"] is not None and job["draft_cache"]["size"] == len(BUNDLE), job
    assert spy.hits.count("/flaky.bundle") == 4
    assert [e["outcome"] for e in drafts(stack, job["id"])] == ["stored"]


def test_an_expired_draft_url_is_renewed_by_one_poll(api, sim, spy, stack):
    sim.settings(video_delay=0.1, draft_cache_bytes=5000)
    answer = api.post("/v1/jobs", json={"model": "flux-3-video", "input": {"mode": "t2v", "prompt": "[pending] [drop] draft",
                                                                         "draft": True}})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    sim.complete(job["bfl_id"])
    wait_until(lambda: sim.task(job["bfl_id"])["status"] == "Ready", timeout=10, message="the task to be Ready")

    done = deliver(api, stack, spy.route("/e.mp4", body=MP4), spy.route("/old.bundle", status=403, body=b"expired"),
                   job=job)

    assert done["draft_cache"] is not None and done["draft_cache"]["size"] == 5000, done
    assert done["attempts"]["polls"] == 1 and spy.hits.count("/old.bundle") == 1
    assert done["video"]["sha256"] == hashlib.sha256(MP4).hexdigest()


def test_deleting_the_job_while_its_draft_cache_downloads_leaves_no_file(api, sim, spy, stack):
    release = held(spy, "/held.bundle", BUNDLE)
    job = send_ready(api, spy.route("/f.mp4", body=MP4), spy.url + "/held.bundle")
    api.wait_for(job["id"], timeout=10)
    wait_until(lambda: "/held.bundle" in spy.hits, timeout=10, message="the draft cache download to start")

    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    release.set()
    db = redis.Redis.from_url(stack.env["REDIS_URL"])
    # RQ keeps no record of a task that succeeded: its end is its record's.
    wait_until(lambda: not rq_task_ids(db, draft_cache_task_name(job["id"])), timeout=10,
               message="the draft cache task to end")

    assert sorted(p.name for p in storage_dir(stack).glob(f"{job['id']}*")) == []
