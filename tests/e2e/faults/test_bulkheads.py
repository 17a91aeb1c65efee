"""Bulkheads in the web process (receiver/bulkheads.py) over HTTP: a BFL that hangs never takes the capacity that
callbacks and reads need; submissions past the room for BFL calls go to a worker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.hanging_bfl import HangingBFL
from devtools.processes import wait_until
from receiver.bulkheads import BFL_CALL_ROOM

DB = 10


@pytest.fixture()
def hung(local_app):
    """A web app in this process whose BFL hangs on every submission."""
    bfl = HangingBFL()
    api, _ = local_app(DB, BFL_API_BASE=bfl.url, API_HOST_ALLOWLIST=bfl.host)
    yield api, bfl
    bfl.stop()


def test_submissions_past_the_room_for_bfl_calls_go_to_a_worker_and_reads_go_on(hung):
    api, bfl = hung
    submissions = BFL_CALL_ROOM + 6
    with ThreadPoolExecutor(submissions) as pool:
        answers = [pool.submit(api.post, "/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"hung {n}"}},
                               timeout=90) for n in range(submissions)]
        wait_until(lambda: bfl.hanging == BFL_CALL_ROOM and sum(a.done() for a in answers) == submissions - BFL_CALL_ROOM,
                   timeout=20, message="the room full of hanging submissions, the rest answered")
        queued = [a.result().json() for a in answers if a.done()]
        assert {a.result().status_code for a in answers if a.done()} == {202}
        assert {job["status"] for job in queued} == {"queued"} and all(job["bfl_id"] is None for job in queued)
        # Reads and callbacks still find a work permit while every BFL call hangs.
        started = time.monotonic()
        assert api.get(f"/v1/jobs/{queued[0]['id']}").json()["status"] == "queued"
        callback = api.callback(queued[1]["id"], {"id": "not-yet", "status": "Pending"})
        assert callback.status_code in (202, 409)  # the job does not know its task yet
        assert time.monotonic() - started < 5
        assert bfl.hanging == BFL_CALL_ROOM  # no more calls went to BFL from the web process
        bfl.release.set()
        finished = [a.result(timeout=60) for a in answers]
    submitted = [r.json() for r in finished if r.json()["status"] == "submitted"]
    assert len(submitted) == BFL_CALL_ROOM and all(job["bfl_id"] for job in submitted)


def test_cancels_of_jobs_being_sent_to_a_hanging_bfl_hold_back_no_read(hung):
    api, bfl = hung
    with ThreadPoolExecutor(2 * BFL_CALL_ROOM) as pool:
        sends = [pool.submit(api.post, "/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"sent {n}"}},
                             timeout=90) for n in range(BFL_CALL_ROOM)]
        wait_until(lambda: bfl.hanging == BFL_CALL_ROOM, timeout=20, message="every room's submission hanging at BFL")
        ids = [job["id"] for job in api.get(f"/v1/jobs?limit={BFL_CALL_ROOM}").json()["jobs"]]
        # More cancels than work permits, each meeting its job's send: none may wait on BFL holding a permit.
        started = time.monotonic()
        cancels = [pool.submit(api.post, f"/v1/jobs/{job_id}/cancel", timeout=60) for job_id in ids]
        assert api.get(f"/v1/jobs/{ids[0]}").status_code == 200
        assert time.monotonic() - started < 5
        answers = [c.result(timeout=30) for c in cancels]
        assert {a.status_code for a in answers} == {503}  # the room is full of the sends: the cancels do not wait
        assert {a.json()["error"]["code"] for a in answers} == {"send_under_way"} and answers[0].headers["Retry-After"]
        assert time.monotonic() - started < 10
        bfl.release.set()
        assert all(s.result(timeout=60).status_code == 202 for s in sends)
    # Sent after all: a cancel sent again now ends each one canceled, BFL's charge kept.
    assert {api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] for job_id in ids} == {"canceled"}
