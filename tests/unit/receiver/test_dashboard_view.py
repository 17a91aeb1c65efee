"""How a job reads on the dashboard (receiver/dashboard_view.py): a waiting job's words, its notice and its timeline
entry; the timeline's order and its one stored moment; how long each step took, in words; what a batch item says of
its notifications; the header's live badge. In the browser: tests/e2e/dashboard/; over HTTP:
tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

import re
from pathlib import Path

from fluxhook.core import job as st
from fluxhook.core.batch import Batch
from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import Waiting, WaitReason
from receiver.dashboard_view import LIVE_BADGE, detail, notify_note, row, steps, timeline, waiting_counts

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


def _stored(**fields) -> Job:
    return Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status=st.STORED, model="flux-2-pro", created_at=NOW + 0.0006,
               updated_at=NOW + 3.4, submitted_at=NOW + 0.8, finished_at=NOW + 2.4, completed_at=NOW + 3.4, **fields)


def test_a_timeline_starts_with_the_jobs_creation_even_in_the_same_millisecond():
    # A recorded event's time is cut to the millisecond: this wait reads 0.6 ms before the job's exact creation.
    events = [{"at": NOW, "kind": "waiting", "reason": "bfl_slots"},
              {"at": NOW + 0.8, "kind": "submission", "outcome": "submitted", "bfl_id": "t-1"},
              {"at": NOW + 2.4, "kind": "callback", "outcome": "accepted", "bfl_status": "Ready",
               "result": "download_queued"}]
    entries = timeline(_stored(pool="default"), events)
    assert [e["kind"] for e in entries] == ["created", "waiting", "submission", "callback", "bfl", "status"]
    assert entries[0]["title"] == "Job created" and entries[1]["title"] == "Waiting: BFL slots"
    assert [e["offset"] for e in entries[:2]] == ["+0 ms", "+0 ms"]
    # At one millisecond, by kind (whatever order they were given in): BFL done before the download it led to.
    same = timeline(_stored(pool="default"), [{"at": NOW + 2.4, "kind": "download", "outcome": "retry", "seconds": 0},
                                             {"at": NOW + 2.4, "kind": "a_later_kind"}])
    assert [e["kind"] for e in same] == ["created", "bfl", "download", "a_later_kind", "status"]


def test_a_stored_job_has_one_stored_moment_with_its_downloads_duration():
    events = [{"at": NOW + 1.5, "kind": "download", "outcome": "retry", "error": "BFL's link answered 503",
               "seconds": 0.4},
              {"at": NOW + 3.4, "kind": "download", "outcome": "stored", "seconds": 0.922}]
    said = [(e["offset"], e["title"], e["text"]) for e in timeline(_stored(pool="default"), events)]
    assert said == [("+0 ms", "Job created", ""),
                    ("+1.1 s", "Download failed", "BFL's link answered 503; trying again (after 400 ms)"),
                    ("+2.4 s", "BFL finished the task", ""),
                    ("+3.4 s", "Job stored", "downloaded and stored in 922 ms; its file is ready to view and download")]
    # Not yet ended (its record not written yet): the download says it on its own.
    running = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status=st.READY, created_at=NOW, updated_at=NOW, pool="default")
    assert [e["title"] for e in timeline(running, events[1:])] == ["Job created", "Downloaded and stored"]


def test_the_facts_time_each_step_from_the_one_before_in_words():
    assert steps(_stored()) == {"bfl_took": "1.6 s after it was sent", "ended_took": "1.0 s after BFL finished"}
    canceled = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status=st.CANCELED, created_at=NOW, updated_at=NOW,
                   submitted_at=NOW + 1, completed_at=NOW + 5)
    assert steps(canceled) == {"bfl_took": "", "ended_took": "4.0 s after it was sent"}
    assert steps(_job()) == {"bfl_took": "", "ended_took": ""}
    shown = detail(CONFIG, _stored(), [], None)
    assert (shown["bfl_took"], shown["ended_took"]) == ("1.6 s after it was sent", "1.0 s after BFL finished")


def _batch(notify_url: str | None, events: tuple[str, ...] = ()) -> Batch:
    return Batch(id="bat_01JZZZZZZZZZZZZZZZZZZZZZZZ", model="flux-2-pro", total=3, created_at=NOW,
                 notify_url=notify_url, notify_events=events)


def test_a_batch_item_names_its_batchs_receiver():
    item = _stored(batch_id="bat_01JZZZZZZZZZZZZZZZZZZZZZZZ", batch_index=2)
    url = "https://shop.example/hooks?token=app-secret"  # shown as its host: its path or query may hold a token
    said = notify_note(item, _batch(url), has_messages=False)
    assert said.startswith("No message of this item's own: its batch's receiver, shop.example:443, gets "
                           "batch.ended when the batch's last item ends")
    assert "no notify_url" not in said
    assert notify_note(item, _batch(url, ("job.ended",)), has_messages=False).startswith(
        "None yet of this item's own (its batch asked for job.ended); its batch's receiver, shop.example:443")
    assert notify_note(item, _batch(url, ("job.ended",)), has_messages=True).startswith(
        "Besides this item's own messages, its batch's receiver, shop.example:443, gets batch.ended")
    assert notify_note(item, _batch(None), has_messages=False) == (
        "none: neither this item nor its batch has a notify_url")
    assert notify_note(_stored(), None, has_messages=False) == "none: this job has no notify_url"
    assert notify_note(_stored(), None, has_messages=True) == ""


def test_every_state_of_the_live_badge_is_explained():
    script = (Path(__file__).resolve().parents[3] / "receiver" / "static" / "dashboard.js").read_text()
    calls = re.findall(r"setIndicator\(([^,]+),", script)
    states = {state for call in calls for state in re.findall(r'"(\w+)"', call)}
    assert states == set(LIVE_BADGE) == {"ok", "done", "offline"}
    for words in LIVE_BADGE.values():
        assert words["title"].startswith(words["word"].capitalize() + ": ")
        assert 0 < len(words["short"]) <= 20  # beside the badge in a phone's header
