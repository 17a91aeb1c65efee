"""What one callback costs in Redis round trips, counted by Redis itself (MONITOR) on a web app of its own."""

from __future__ import annotations

import pytest

from conftest import ready_payload
from devtools.processes import wait_until
from helpers import commands_during

DB = 2  # no stack of the suite uses it: no other process writes there


@pytest.fixture()
def lone_app(local_app):
    """A web app in this process on a Redis database no other process uses, with no worker."""
    return local_app(DB)


def test_the_first_ready_callback_is_three_round_trips_to_redis(lone_app, spy):
    api, connection = lone_app
    # A callback before the counted one: connections are open and RQ knows the server's version.
    warm_up = api.submit("[pending] warm-up")
    assert api.callback(warm_up["id"], ready_payload(warm_up["bfl_id"], spy.route("/w.png", body=b"x"))).ok
    # Its count written (every few seconds), so no write of it falls among the counted callback's commands.
    wait_until(lambda: connection.exists("fh:metrics"), timeout=10, message="the warm-up's count written")
    job = api.submit("[pending] counted")
    payload = ready_payload(job["bfl_id"], spy.route("/counted.png", body=b"x"))

    answers = []
    commands = commands_during(connection, DB, lambda: answers.append(api.callback(job["id"], payload)))

    assert answers[0].status_code == 200 and answers[0].json()["outcome"] == "download_queued"
    # A connection opened meanwhile says hello first (werkzeug's threads come and go; gunicorn's keep theirs).
    handshake = ("SELECT", "HELLO", "CLIENT SETINFO", "AUTH")
    sent = [c["command"] for c in commands if c["client_type"] != "lua" and not c["command"].startswith(handshake)]
    # The job's model (its URL's life says which download line it joins), then one script, then one MULTI.
    assert sent[0].startswith("HGET") and sent[1].startswith("EVALSHA"), sent
    # Inside that one script: the move, the download's lock, the timeline entry, and the download taken at once (no
    # line holds work, RQ's queue has room), its job held by its move's lease: no line joined, no feeder woken. The
    # metric is tallied by the process, written with others every few seconds.
    inside = " ".join(c["command"] for c in commands if c["client_type"] == "lua")
    assert "ZADD fh:due " in inside and "ZADD fh:work:" not in inside and "fh:work:added" not in inside
    assert "fh:download:" in inside and "fh:events:" in inside
    assert "fh:metrics" not in inside
    # The RQ task queued in the callback's answer, in the one MULTI a feeder would send: the third round trip.
    assert sent[2] == "MULTI" and sent[-1] == "EXEC" and "MULTI" not in sent[3:], sent
    assert any(c.startswith("RPUSH rq:queue:fluxhook download-") for c in sent)
    job_now = api.job(job["id"])
    assert job_now["status"] == "ready" and job_now["attempts"]["webhooks"] == 1


def test_a_duplicate_ready_queues_nothing_more(lone_app, spy):
    api, connection = lone_app
    job = api.submit("[pending] twice")
    payload = ready_payload(job["bfl_id"], spy.route("/twice.png", body=b"x"))
    assert api.callback(job["id"], payload).json()["outcome"] == "download_queued"

    answer = api.callback(job["id"], payload)

    assert answer.status_code == 200 and answer.json()["outcome"] == "duplicate"
    # Its download queued once: at once into RQ (no line held work), and nothing in a line.
    assert connection.zcard("fh:work:download:line") == 0 and connection.llen("rq:queue:fluxhook") == 1
