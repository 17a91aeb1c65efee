"""An app key's reads of the job lists are bounded (docs/keys.md "Reads"): past its reads_per_minute (600 a minute here,
the service's default, 60 at once; a page of 100 jobs counts 5) its list, search and GET /v1/events answer 429
rate_limited with Retry-After, while another key and an admin go on. An over-long
search answers the API's 400. Over real HTTP against the session stack, and a second web process on its Redis with
READS_PER_MINUTE=1 (nothing comes back within a test: exact counts)."""

from __future__ import annotations

import time

import pytest

from helpers import assert_error
from key_helpers import as_key, make_key, second_web

SEARCH = {"q": "lighthouse", "limit": 100}  # 5 units of the key's 60 at once


def test_a_key_searching_flat_out_gets_429_with_retry_after_and_another_key_reads_on(api):
    _, attacker = make_key(api, reads_per_minute=600)
    _, other = make_key(api, reads_per_minute=600)
    own = attacker.submit("[pending] a lighthouse of its own")["id"]
    theirs = other.submit("[pending] another lighthouse")["id"]

    answers = []
    started = time.monotonic()
    while len(answers) < 30 and (not answers or answers[-1].status_code == 200):
        answers.append(attacker.get("/v1/jobs", params=SEARCH))
    elapsed = time.monotonic() - started
    refused = answers[-1]

    # 60 units at once, 10 back a second: 12 searches of 5, and one more for each 0.5 s the searches took.
    assert 12 <= len(answers) - 1 <= 12 + int(elapsed * 2) + 1, ([a.status_code for a in answers], elapsed)
    assert own in answers[0].text
    assert "READS_PER_MINUTE" in assert_error(refused, 429, "rate_limited")["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    # Only that key is limited: the other key's list and search, and the admin's.
    assert [j["id"] for j in other.get("/v1/jobs", params=SEARCH).json()["jobs"]] == [theirs]
    assert other.get("/v1/jobs").status_code == api.get("/v1/jobs", params=SEARCH).status_code == 200
    # A client that waits as told reads again.
    time.sleep(int(refused.headers["Retry-After"]))
    assert attacker.get("/v1/jobs", params=SEARCH).status_code == 200


def test_a_malformed_read_counts_as_any_read_and_an_over_long_search_is_the_apis_400(api):
    _, app = make_key(api, reads_per_minute=60)  # 6 units at once, one back a second

    malformed = app.get("/v1/jobs", params={"q": "a" * 10_000, "limit": 100})  # 5 units
    unknown = app.get("/v1/jobs", params={"search": "x"})  # 1
    again = app.get("/v1/jobs", params={"q": "a" * 10_000, "limit": 100})

    assert "'q' must be 1 to 200 characters" in assert_error(malformed, 400, "invalid_request")["message"]
    assert_error(unknown, 400, "unknown_field")
    # Both made the web work, so both counted: the bucket is spent, and the next page is refused before it is read.
    assert_error(again, 429, "rate_limited")


@pytest.fixture()
def slow_web(stack):
    """A web process on the stack's Redis whose keys may read once a minute (5 at once: the largest page)."""
    with second_web(dict(stack.env, READS_PER_MINUTE="1")) as web:
        yield web


def test_every_web_process_counts_one_bucket_per_key_and_a_stream_of_every_job_is_a_read(api, slow_web):
    created, _ = make_key(api)
    _, other = make_key(api)
    app = as_key(slow_web, created["key"])

    pages = [app.get("/v1/jobs", params={"limit": 40}) for _ in range(2)]  # 2 units each
    stream = app.get("/v1/events", timeout=5)  # the fifth unit
    refused = [app.get("/v1/jobs", params={"limit": 1}), app.get("/v1/events", timeout=5)]

    assert [p.status_code for p in pages] == [200, 200]
    # Admitted, then refused by this process only because a werkzeug server cannot hold a stream: nothing opened.
    assert_error(stream, 503, "streams_busy")
    for response in refused:
        assert_error(response, 429, "rate_limited")
        assert 55 <= int(response.headers["Retry-After"]) <= 61
    # The gunicorn web process counts the same bucket; another key and an admin read on, on either process.
    assert_error(as_key(api, created["key"]).get("/v1/jobs", params={"q": "x"}), 429, "rate_limited")
    assert as_key(slow_web, other.http.headers["Authorization"].split()[1]).get("/v1/jobs").status_code == 200
    assert slow_web.get("/v1/jobs", params={"limit": 100}).status_code == 200
