"""POST /v1/jobs/track counts against an app key's requests_per_minute like a submission (docs/callbacks.md, docs/keys.md): each
track costs a BFL poll or more, so 30 at once on a key allowed 3 a minute make at most 3 jobs. Over real HTTP
against the session stack, in parallel."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from helpers import assert_error
from key_helpers import make_key


def test_thirty_parallel_tracks_on_a_key_allowed_three_a_minute_make_three_jobs(api):
    _, app = make_key(api, requests_per_minute=3)
    run = uuid.uuid4().hex[:8]

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda n: app.track(f"rate-{run}-{n}"), range(30)))

    tracked = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(tracked) <= 3 and len(tracked) + len(refused) == 30
    for answer in refused:
        assert_error(answer, 429, "rate_limited")
        assert int(answer.headers["Retry-After"]) >= 1
    assert len(app.get("/v1/jobs", params={"limit": 100}).json()["jobs"]) == len(tracked)


def test_tracks_and_submissions_share_the_keys_minute(api, sim):
    _, app = make_key(api, requests_per_minute=2)

    assert app.track(f"shared-{uuid.uuid4().hex[:8]}").status_code == 201
    assert app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] a fox"}}).status_code == 202
    assert_error(app.track(f"shared-{uuid.uuid4().hex[:8]}"), 429, "rate_limited")


def test_a_track_of_another_keys_task_is_a_job_of_its_own_and_a_refused_track_counts_nothing(api):
    _, other = make_key(api)
    _, app = make_key(api, requests_per_minute=2)
    theirs = f"theirs-{uuid.uuid4().hex[:8]}"
    their_job = other.track(theirs).json()
    assert_error(app.track(f"mine-{uuid.uuid4().hex[:8]}", account="no-such-account"), 400)

    mine = app.track(theirs)  # tracking is per key: its own job, as if nobody else tracked the task
    assert mine.status_code == 201 and mine.json()["id"] != their_job["id"]
    assert app.track(f"mine-{uuid.uuid4().hex[:8]}").status_code == 201  # its second track of the minute
    assert_error(app.track(f"mine-{uuid.uuid4().hex[:8]}"), 429, "rate_limited")
    assert other.job(their_job["id"])["key_id"] == their_job["key_id"]
