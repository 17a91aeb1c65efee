"""Idempotency-Key on POST /v1/jobs and /v1/jobs/track (SPEC §3), over HTTP, with a BFL stand-in that counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import API
from devtools.hanging_bfl import HangingBFL
from devtools.processes import wait_until
from helpers import assert_error, commands_during

DB = 11
JOB = {"model": "flux-2-pro", "input": {"prompt": "a fox, once", "width": 512}, "metadata": {"order": 7}}


@pytest.fixture()
def app(local_app):
    """A web app in this process whose BFL answers at once and counts submissions."""
    bfl = HangingBFL(hang=False)
    api, connection = local_app(DB, BFL_API_BASE=bfl.url, API_HOST_ALLOWLIST=bfl.host)
    yield api, bfl, connection
    bfl.stop()


def _post(api: API, key: str | None, body=JOB, path: str = "/v1/jobs", **kwargs):
    headers = {} if key is None else {"Idempotency-Key": key}
    if isinstance(body, bytes):
        return api.post(path, data=body, headers={**headers, "Content-Type": "application/json"}, **kwargs)
    return api.post(path, json=body, headers=headers, **kwargs)


def _job_count(api: API) -> int:
    return len(api.get("/v1/jobs?limit=100").json()["jobs"])


def test_a_repeated_submission_is_answered_with_the_first_answer_and_not_sent_again(app):
    api, bfl, _ = app
    first = _post(api, "order-7")
    again = _post(api, "order-7")
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.json()["bfl_id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert bfl.submissions == 1 and _job_count(api) == 1


def test_the_same_body_in_another_key_order_and_spacing_is_the_same_request(app):
    api, bfl, _ = app
    assert _post(api, "order-8").status_code == 202
    reordered = b'{ "metadata": {"order": 7},  "input": {"width": 512, "prompt": "a fox, once"}, "model": "flux-2-pro" }'
    again = _post(api, "order-8", reordered)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert bfl.submissions == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(app):
    api, bfl, _ = app
    assert _post(api, "order-9").status_code == 202
    other = _post(api, "order-9", dict(JOB, input={"prompt": "a different fox"}))
    assert_error(other, 422, "idempotency_key_reused")
    assert bfl.submissions == 1 and _job_count(api) == 1


def test_concurrent_retries_with_one_key_make_one_task(app):
    api, bfl, _ = app
    bfl.hang = True
    with ThreadPoolExecutor(20) as pool:
        answers = [pool.submit(_post, api, "burst", timeout=60) for _ in range(20)]
        wait_until(lambda: bfl.submissions == 1 and sum(a.done() for a in answers) == 19, timeout=20,
                   message="one request at BFL, the other 19 answered")
        refused = [a.result() for a in answers if a.done()]
        for answer in refused:
            assert_error(answer, 409, "idempotency_key_in_use")
        bfl.release.set()
        first = next(a.result(timeout=30) for a in answers if a.result(timeout=30).status_code == 202)
    retry = _post(api, "burst")
    assert retry.status_code == 202 and retry.content == first.content
    assert bfl.submissions == 1 and _job_count(api) == 1


def test_keys_belong_to_their_bearer_token(app):
    api, bfl, _ = app
    mine = _post(api, "shared-key")
    theirs = _post(API(api.base_url, token="second-token-abcdef"), "shared-key")
    assert mine.status_code == theirs.status_code == 202
    assert theirs.json()["id"] != mine.json()["id"] and "Idempotent-Replayed" not in theirs.headers
    assert bfl.submissions == 2


def test_a_5xx_answer_is_not_kept_so_the_key_may_be_retried(app):
    api, bfl, _ = app
    bfl.fail_with = 500
    failed = _post(api, "retry-me", timeout=60)
    assert failed.status_code == 502
    bfl.fail_with = None
    retried = _post(api, "retry-me")
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert _job_count(api) == 1


def test_a_4xx_answer_is_kept_and_replayed(app):
    api, bfl, _ = app
    bad = _post(api, "bad-body", {"model": "flux-2-pro"})
    assert_error(bad, 400)
    again = _post(api, "bad-body", {"model": "flux-2-pro"})
    assert again.status_code == 400 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == bad.content and bfl.submissions == 0


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9".encode("latin-1")])
def test_a_bad_key_is_refused_and_creates_nothing(app, key):
    api, bfl, _ = app
    answer = api.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": key})
    assert_error(answer, 400, "invalid_idempotency_key")
    assert bfl.submissions == 0 and _job_count(api) == 0


def test_tracking_replays_its_first_answer_too(app):
    api, _, _ = app
    body = {"bfl_id": "task-tracked-once", "model": "flux-2-pro"}
    first = _post(api, "track-1", body, path="/v1/jobs/track")
    again = _post(api, "track-1", body, path="/v1/jobs/track")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"


def test_a_replay_costs_one_round_trip_to_redis(app):
    api, bfl, connection = app
    assert _post(api, "counted").status_code == 202
    answers = []
    commands = commands_during(connection, DB, lambda: answers.append(_post(api, "counted")))
    assert answers[0].headers["Idempotent-Replayed"] == "true"
    handshake = ("SELECT", "HELLO", "CLIENT SETINFO", "AUTH")
    sent = [c["command"] for c in commands if c["client_type"] != "lua" and not c["command"].startswith(handshake)]
    assert len(sent) == 1 and sent[0].startswith("EVALSHA"), sent
    assert bfl.submissions == 1
