"""``Prefer: wait=N`` on GET /v1/jobs/{id}, through the Procfile's processes."""

from __future__ import annotations

import threading
import time

from conftest import ready_payload
from helpers import serve_png


def _get_waiting(api, job_id: str, prefer: str, into: list) -> threading.Thread:
    def run():
        started = time.monotonic()
        response = api.get(f"/v1/jobs/{job_id}", headers={"Prefer": prefer}, timeout=70)
        into.append((response, time.monotonic() - started))
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_waiting_read_answers_once_the_callback_has_stored_the_image(api, spy):
    job = api.submit("[pending] waited for")
    answers: list = []
    waiting = _get_waiting(api, job["id"], "wait=30", answers)
    time.sleep(0.3)  # let the read start waiting: nothing to wait on, the point is that it is already waiting
    assert not answers
    assert api.callback(job["id"], ready_payload(job["bfl_id"], serve_png(spy, "waited"))).status_code == 200
    waiting.join(timeout=40)
    response, took = answers[0]
    assert response.status_code == 200
    assert response.json()["status"] == "stored"
    assert response.headers["Preference-Applied"] == "wait=30"
    assert took < 30  # woken by the job's end, not by the end of the wait


def test_a_wait_that_runs_out_answers_with_the_job_as_it_is(api):
    job = api.submit("[pending] never finishes")
    started = time.monotonic()
    response = api.get(f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=1"})
    assert time.monotonic() - started >= 1.0
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    assert response.headers["Preference-Applied"] == "wait=1"


def test_a_terminal_job_is_answered_at_once_with_the_wait_clamped(api, sim):
    job = api.submit("[pending] fails")
    sim.complete(job["bfl_id"], "error")
    failed = api.wait_for(job["id"], "failed")
    for prefer, applied in (("wait=100", "wait=60"), ("wait=0", "wait=1"), ("respond-async, WAIT=-5", "wait=1")):
        response = api.get(f"/v1/jobs/{failed['id']}", headers={"Prefer": prefer})
        assert response.headers["Preference-Applied"] == applied
        assert response.json()["status"] == "failed"


def test_malformed_or_other_preferences_are_ignored(api):
    job = api.submit("[pending] impatient")
    for prefer in ("wait=soon", "wait", "return=minimal", ""):
        started = time.monotonic()
        response = api.get(f"/v1/jobs/{job['id']}", headers={"Prefer": prefer})
        assert response.status_code == 200 and "Preference-Applied" not in response.headers
        assert time.monotonic() - started < 5


def test_reads_and_callbacks_go_on_while_many_requests_wait(api, spy, sim):
    waiting_on = api.submit("[pending] waited on by many")
    answers: list = []
    threads = [_get_waiting(api, waiting_on["id"], "wait=20", answers) for _ in range(40)]
    other = api.submit("[pending] meanwhile")
    time.sleep(0.3)  # the waiters are in
    assert api.callback(other["id"], ready_payload(other["bfl_id"], serve_png(spy, "meanwhile"))).status_code == 200
    assert api.wait_for(other["id"], "stored", timeout=15)["status"] == "stored"
    assert not answers  # still waiting: the callback and the reads did not need their threads
    sim.complete(waiting_on["bfl_id"], "error")
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 40
    assert {response.json()["status"] for response, _ in answers} == {"failed"}
