"""How a waiting job and a key's waiting jobs read on the dashboard (receiver/dashboard_view.py): the words, the
job page's notice and its timeline entry. In the browser: tests/e2e/dashboard/; over HTTP:
tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

from fluxhook.core import transitions as st
from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import Waiting, WaitReason
from receiver.dashboard_view import detail, row, timeline, waiting_counts

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CONFIG = Config(redis_url="redis://unused", bfl_api_key="k", secret_key="s" * 32, api_tokens=("t",))


def _job(status: str = st.QUEUED) -> Job:
    return Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status=status, model="flux-2-pro", created_at=NOW, updated_at=NOW)


def test_a_waiting_job_says_why_on_its_page_and_in_the_list():
    shown = detail(CONFIG, _job(), [], Waiting(WaitReason.KEY_DAILY_CREDITS, NOW + 16 * 3600))
    assert shown["waiting_reason"] == "key_daily_credits"
    assert shown["waiting"] == "its app key's daily_credits are spent for today, until 2027-01-16 00:00:00 UTC"
    assert shown["submitted"] == "waiting: key daily credits"
    assert row(_job(), Waiting(WaitReason.BFL_SLOTS))["submitted"] == "waiting: BFL slots"


def test_a_job_that_does_not_wait_shows_no_reason():
    shown = detail(CONFIG, _job(st.SUBMITTED), [], None)
    assert (shown["waiting"], shown["waiting_reason"]) == ("", "")
    assert row(_job(), None)["submitted"] == "waiting"  # queued, being sent: no reason to tell


def test_a_new_wait_reads_in_the_timeline():
    events = [{"at": NOW + 1, "kind": "waiting", "reason": "bfl_capacity", "until": "2027-01-15T08:00:31Z"},
              {"at": NOW + 2, "kind": "waiting", "reason": "a_later_release_word"}]
    entries = [e for e in timeline(_job(), events) if e["kind"] == "waiting"]
    assert [(e["title"], e["text"], e["tone"]) for e in entries] == [
        ("Waiting: BFL capacity", "BFL said it is full (429 or 503) until 2027-01-15T08:00:31Z", "warn"),
        ("Waiting: a later release word", "", "warn")]


def test_a_keys_waiting_jobs_read_by_reason():
    assert waiting_counts({"bfl_slots": 1, "key_daily_credits": 2}) == [
        {"count": 1, "words": "BFL slots", "reason": "bfl_slots", "title": "every BFL slot (BFL_MAX_ACTIVE) is taken"},
        {"count": 2, "words": "key daily credits", "reason": "key_daily_credits",
         "title": "its app key's daily_credits are spent for today"}]
    assert waiting_counts({}) == []


def test_the_job_page_shows_bfls_progress_while_the_task_runs_only():
    running = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status=st.SUBMITTED, model="flux-3-video", created_at=NOW,
                  updated_at=NOW, bfl_status="Generating", progress=0.456)
    shown = detail(CONFIG, running, [], None)
    assert (shown["progress"], shown["progress_percent"]) == ("46 %", 46)
    ended = Job(id=running.id, status=st.STORED, model="flux-3-video", created_at=NOW, updated_at=NOW,
                bfl_status="Ready", progress=1.0)
    assert (detail(CONFIG, ended, [], None)["progress"], detail(CONFIG, ended, [], None)["progress_percent"]) == ("", None)
