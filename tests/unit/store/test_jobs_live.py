"""A running job's BFL word and progress on a real Redis: recorded never backwards, even when reports cross
(``JobStore.show_running``, the compare-and-set in ``lua/job_transition.lua``)."""

from __future__ import annotations

import random
import threading
import time

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.live import Shown, earlier
from fluxhook.store.jobs import JobStore

RUNNING = (st.QUEUED, st.SUBMITTED)


def _submitted(store: JobStore) -> Job:
    now = time.time()
    job, created = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=new_job_id(), created_at=now,
                                    updated_at=now, bfl_status=st.BFL_PENDING))
    assert created
    return job


def _shown(store: JobStore, job_id: str) -> Shown:
    job = store.get(job_id)
    assert job is not None
    return Shown(job.bfl_status, job.progress)


def test_a_polled_video_edit_goes_pending_reasoning_then_ready_never_back(store):
    # The polls: Pending, Reasoning 0.32, a late Pending, then Ready.
    job = _submitted(store)
    seen = []
    for report in (Shown("Pending", None), Shown("Reasoning", 0.32), Shown("Pending", None)):
        assert store.show_running(job.id, report, only_in=RUNNING)
        seen.append(_shown(store, job.id))
    assert store.transition(job.id, st.READY, bfl_status=st.BFL_READY, progress=None)
    seen.append(_shown(store, job.id))
    assert seen == [Shown("Pending", None), Shown("Reasoning", 0.32), Shown("Reasoning", 0.32), Shown("Ready", None)]
    # Once ready, a late running report changes nothing.
    assert not store.show_running(job.id, Shown("Generating", 0.9), only_in=RUNNING)
    assert _shown(store, job.id) == Shown("Ready", None)


def test_a_report_that_changes_nothing_writes_nothing(store):
    job = _submitted(store)
    assert store.show_running(job.id, Shown("Generating", 0.6), only_in=RUNNING)
    updated = store.get(job.id).updated_at
    assert store.show_running(job.id, Shown("Reasoning", 0.4), only_in=RUNNING)
    assert store.get(job.id).updated_at == updated and _shown(store, job.id) == Shown("Generating", 0.6)


def test_crossing_reports_never_move_the_job_backwards(store):
    # Polls and callbacks of one task, each road's reports in BFL's order, interleaved by the threads: what a
    # reader sees must only go forward (a plain write of each report would go back whenever two cross).
    job = _submitted(store)
    steps = [Shown("Pending", round(n / 100, 2)) for n in range(0, 15)]
    steps += [Shown("Reasoning", round(n / 100, 2)) for n in range(15, 45)]
    steps += [Shown("Generating", round(n / 100, 2)) for n in range(45, 100)]
    done = threading.Event()
    seen: list[Shown] = []

    def road(seed: int) -> None:
        rng = random.Random(seed)
        for step in steps:
            if rng.random() < 0.5:  # each road misses some of BFL's states
                store.show_running(job.id, step, only_in=RUNNING)

    def reader() -> None:
        while not done.is_set():
            seen.append(_shown(store, job.id))

    watching = threading.Thread(target=reader)
    watching.start()
    roads = [threading.Thread(target=road, args=(seed,)) for seed in range(4)]
    for thread in roads:
        thread.start()
    for thread in roads:
        thread.join()
    done.set()
    watching.join()
    seen.append(_shown(store, job.id))
    for before, after in zip(seen, seen[1:], strict=False):
        assert not earlier(after.bfl_status, before.bfl_status), (before, after)
        assert (after.progress or 0) >= (before.progress or 0), (before, after)
    assert seen[-1].bfl_status == "Generating" and seen[-1].progress >= 0.9


def test_a_job_no_longer_running_is_not_written(store):
    job = _submitted(store)
    assert not store.show_running(job.id, Shown("Generating", 0.5), only_in=(st.QUEUED,))
    assert not store.show_running(new_job_id(), Shown("Generating", 0.5), only_in=RUNNING)
    assert _shown(store, job.id) == Shown("Pending", None)


def test_after_a_refuted_ready_the_last_running_word_still_stands(store):
    # BFL refuted a Ready it did not send: the job is submitted again with bfl_status Pending (storing.py), but the
    # task had reached Generating, and a late Reasoning must not be shown after it.
    job = _submitted(store)
    assert store.show_running(job.id, Shown("Generating", 0.9), only_in=RUNNING)
    assert store.transition(job.id, st.READY, bfl_status=st.BFL_READY)
    assert store.transition(job.id, st.SUBMITTED, bfl_status=st.BFL_PENDING)
    assert store.show_running(job.id, Shown("Reasoning", 0.5), only_in=RUNNING)
    again = store.get(job.id)
    assert (again.bfl_status, again.bfl_running, again.progress) == ("Generating", "Generating", 0.9)
