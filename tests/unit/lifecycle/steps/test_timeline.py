"""A job's timeline (fluxhook/lifecycle/steps/timeline.py), on a real Redis: entries recorded on their own or with the work
they describe (then only if that work happens), read back oldest first and capped; recording never raises, whatever
the detail or Redis; an entry that cannot be read is skipped; the timeline goes with its job. What the dashboard shows
of it: tests/unit/receiver/."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from devtools.processes import free_port
from fluxhook.core import job as st
from fluxhook.lifecycle.steps import timeline
from fluxhook.services import build_services
from fluxhook.store.keys import KEYS
from fluxhook.store.timeline import TIMELINE_CAP
from helpers import tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _without_at(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "at"} for e in entries]


def test_entries_are_read_back_oldest_first_with_their_time_and_detail(svc):
    job = tracked_job(svc, "task-story")
    before = time.time()

    timeline.record(svc, job.id, "poll", answer="Pending")
    timeline.record(svc, job.id, "callback", outcome="accepted", bfl_status="Ready")

    entries = timeline.recent(svc.store.timeline, job.id)
    assert _without_at(entries) == [{"kind": "poll", "answer": "Pending"},
                                    {"kind": "callback", "outcome": "accepted", "bfl_status": "Ready"}]
    assert all(before - 1 <= e["at"] <= time.time() + 1 for e in entries)  # Redis's clock, to the millisecond


def test_an_entry_added_with_other_work_is_recorded_only_if_that_work_happens(svc):
    job = tracked_job(svc, "task-with-work")

    assert svc.jobs.update(job.id, bfl_status="Generating", effects=[timeline.entry(job.id, "poll", answer="Generating")])
    svc.jobs.transition(job.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    # An ended job changes no more: neither does its timeline with that change.
    assert not svc.jobs.update(job.id, bfl_status="Pending", effects=[timeline.entry(job.id, "poll", answer="Pending")])

    assert _without_at(timeline.recent(svc.store.timeline, job.id)) == [{"kind": "poll", "answer": "Generating"}]


def test_a_long_story_keeps_its_newest_entries(svc):
    job = tracked_job(svc, "task-long")
    for n in range(TIMELINE_CAP + 5):
        timeline.record(svc, job.id, "poll", n=n)

    entries = timeline.recent(svc.store.timeline, job.id)

    assert [e["n"] for e in entries] == list(range(5, TIMELINE_CAP + 5))


def test_recording_never_raises_whatever_the_detail_or_redis(svc):
    job = tracked_job(svc, "task-unrecordable")
    looped: dict = {}
    looped["self"] = looped

    timeline.record(svc, job.id, "poll", detail=looped)  # no JSON for it
    timeline.record(svc, job.id, "poll", when=object())  # written as its words

    [entry] = timeline.recent(svc.store.timeline, job.id)
    assert entry["kind"] == "poll" and entry["when"].startswith("<object object")
    down = build_services(replace(svc.config, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    timeline.record(down, job.id, "poll", answer="Pending")
    timeline.forget(down.store, job.id)


def test_an_entry_that_cannot_be_read_is_skipped(svc):
    job = tracked_job(svc, "task-garbled")
    timeline.record(svc, job.id, "poll", answer="Pending")
    for junk in (b"not json", b"[1, 2]", b'{"kind": "poll", "at": "yesterday"}'):
        svc.redis.lpush(KEYS.timeline(job.id), junk)
    timeline.record(svc, job.id, "poll", answer="Ready")

    assert [e["answer"] for e in timeline.recent(svc.store.timeline, job.id)] == ["Pending", "Ready"]


def test_a_forgotten_timeline_is_gone_and_other_jobs_keep_theirs(svc):
    job, other = tracked_job(svc, "task-forgotten"), tracked_job(svc, "task-kept")
    timeline.record(svc, job.id, "poll", answer="Pending")
    timeline.record(svc, other.id, "poll", answer="Pending")

    timeline.forget(svc.store, job.id)

    assert timeline.recent(svc.store.timeline, job.id) == []
    assert len(timeline.recent(svc.store.timeline, other.id)) == 1


def test_an_entry_is_never_stamped_later_than_what_follows_it():
    """A poll's entry, then the job's end stamped a fraction of a millisecond later: the entry must come first."""
    for _ in range(2000):
        stamped = json.loads(timeline.entry("job_x", "poll", answer="Error").entry)["at"]
        assert stamped <= time.time()
