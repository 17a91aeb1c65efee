"""BFL's status words beyond the known ones: FLUX 3 video's Reasoning and Generating, and any word
BFL adds later, mean "still running", from a callback or a poll, with BFL's ``progress``.

The rules on their own (``fluxhook.core.transitions``), then callbacks through the Procfile's processes, then
polls answered by a spy host standing in for BFL.
"""

from __future__ import annotations

import time

import pytest

from fluxhook.bfl.reports import report_from_payload
from fluxhook.core import transitions as st
from fluxhook.core.errors import BFLUnavailable
from fluxhook.core.outcomes import Outcome
from fluxhook.lifecycle import checking, schedule
from helpers import serve_png, tracked_job

# -- the rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, word", [
    ("Reasoning", "Reasoning"),
    ("Generating", "Generating"),
    ("  Generating\n", "Generating"),
    ("Up\x00scaling", "Upscaling"),
    ("pending", "Pending"),
    ("SUCCESS", "Ready"),
    ("x" * 10_000, "x" * 40),
    ("   ", None),
    ("\x00\x07", None),
])
def test_a_status_word_is_kept_as_sent_and_cut(raw, word):
    assert st.bfl_status_word(raw) == word


@pytest.mark.parametrize("word, running", [
    ("Pending", True), ("Reasoning", True), ("Generating", True), ("Some Word Of 2027", True),
    ("Ready", False), ("Error", False), ("Failed", False), ("Request Moderated", False),
    ("Content Moderated", False), ("Task not found", False),
])
def test_every_word_but_ready_and_the_failures_is_running(word, running):
    assert st.is_running(word) is running


def test_metric_labels_stay_few_whatever_bfl_says():
    assert st.status_label("Reasoning") == st.status_label("Generating") == "running"
    assert st.status_label("Request Moderated") == "request_moderated"
    assert st.status_label("Pending") == "pending"


@pytest.mark.parametrize("value, fraction", [
    (0.25, 0.25), (0, 0.0), (1, 1.0), (42, 0.42), (100, 1.0), (250, 1.0),
    (-1, None), (True, None), ("0.5", None), (None, None), (float("nan"), None),
])
def test_progress_is_a_fraction(value, fraction):
    assert st.progress_value(value) == fraction


def test_a_report_carries_the_word_and_its_progress():
    report = report_from_payload({"id": "t", "status": "Reasoning", "progress": 0.12, "details": None})
    assert (report.status, report.progress, report.sample_url) == ("Reasoning", 0.12, None)


# -- callbacks -------------------------------------------------------------------------------------

def test_callbacks_with_new_words_keep_the_job_running_until_ready(api, sim, spy):
    job = api.submit("[pending] a video that thinks first")

    for word, progress in (("Reasoning", 0.1), ("Generating", 0.6)):
        answer = api.callback(job["id"], {"id": job["bfl_id"], "status": word, "progress": progress})
        assert answer.status_code == 200, answer.text
        seen = api.job(job["id"])
        assert (seen["status"], seen["bfl_status"], seen["progress"]) == ("submitted", word, progress)
        assert seen["error"] is None

    url = serve_png(spy, "after-generating")
    answer = api.callback(job["id"], {"id": job["bfl_id"], "status": "Ready", "result": {"sample": url}})
    assert answer.status_code == 200, answer.text
    done = api.wait_for(job["id"])
    assert (done["status"], done["bfl_status"], done["progress"]) == ("stored", "Ready", None)


def test_a_long_unknown_word_is_cut_not_stored_whole(api, sim):
    job = api.submit("[pending] a chatty BFL")

    answer = api.callback(job["id"], {"id": job["bfl_id"], "status": "Rendering" + "z" * 10_240})

    assert answer.status_code == 200, answer.text
    seen = api.job(job["id"])
    assert seen["status"] == "submitted"
    assert seen["bfl_status"] == ("Rendering" + "z" * 40)[:40]


# -- polls -----------------------------------------------------------------------------------------

@pytest.fixture()
def services(make_services, spy):
    """Services on database 6 whose polls go to the spy host."""
    return make_services(6, BFL_API_BASE=spy.url, API_HOST_ALLOWLIST=f"127.0.0.1:{spy.port}")


def test_a_poll_answering_reasoning_keeps_the_job_and_its_schedule(services, spy):
    spy.route("/v1/get_result?id=thinking", body=b'{"id": "thinking", "status": "Reasoning", "progress": 0.05}')
    job = tracked_job(services, "thinking", submitted_at=time.time() - 60)

    outcome = checking.poll_submitted(services, job, time.time())

    assert outcome == "pending"
    seen = services.jobs.get(job.id)
    assert (seen.status, seen.bfl_status, seen.progress, seen.polls) == ("submitted", "Reasoning", 0.05, 1)
    assert services.jobs.due_at(job.id) > time.time()


def test_a_job_still_generating_after_its_hour_times_out(services, spy):
    spy.route("/v1/get_result?id=slow", body=b'{"id": "slow", "status": "Generating", "progress": 0.9}')
    job = tracked_job(services, "slow", submitted_at=time.time() - schedule.POLL_DEADLINE - 1)

    assert checking.poll_submitted(services, job, time.time()) == Outcome.TIMEOUT

    seen = services.jobs.get(job.id)
    assert (seen.status, seen.error["code"]) == ("failed", "timeout")


def test_an_unreadable_poll_answer_is_bfl_failing_for_now(services, spy):
    spy.route("/v1/get_result?id=odd", body=b'{"id": "odd", "status": 12}')
    job = tracked_job(services, "odd", submitted_at=time.time() - 60)

    with pytest.raises(BFLUnavailable):
        checking.poll_submitted(services, job, time.time())

    seen = services.jobs.get(job.id)
    assert seen.status == "submitted" and services.jobs.due_at(job.id) > time.time()
