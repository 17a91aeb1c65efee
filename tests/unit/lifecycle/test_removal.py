"""Removing a job (fluxhook/lifecycle/removal.py) on a real Redis and a real directory: the record, its result and
every file made beside it, its timeline; and a job whose record already expired leaves no index entry behind.
Deleting frees nothing BFL still uses (docs/api.md, ``waits_for_bfl``): a job whose task BFL runs ends as a cancel ends it
and keeps its slot under its key's max_active until BFL says the task ended, then goes (steps/erasing.py). Over HTTP:
tests/e2e/jobs/test_cancel_churn.py."""

from __future__ import annotations

import io
import time

import pytest

from ending_helpers import queued_job
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.errors import SendUnderWay
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome, ReportOutcome
from fluxhook.core.wait_reasons import Waiting, WaitReason
from fluxhook.lifecycle import canceling, checking, key_admin
from fluxhook.lifecycle.draft_caches import key_for as draft_cache_key
from fluxhook.lifecycle.removal import remove_job, waits_for_bfl
from fluxhook.lifecycle.steps import submission, task_inputs, timeline, waits
from fluxhook.lifecycle.steps.applying import apply_report, from_callback
from fluxhook.lifecycle.steps.callers import ADMIN
from fluxhook.lifecycle.steps.schedule import POLL_DEADLINE
from fluxhook.media import posters, thumbnails
from fluxhook.store.keys import KEYS
from slot_helpers import held_by

DB = 6


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _beside(job_id: str) -> list[str]:
    """The storage keys of the files made beside a job's result."""
    return [thumbnails.key_for(job_id), posters.key_for(job_id), draft_cache_key(job_id), task_inputs.key_for(job_id)]


def _stored_job(svc, model: str = "flux-2-pro") -> Job:
    """A stored job with its result, the files made beside it, and a timeline."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, model=model, bfl_id=f"task-{new_job_id()}",
                                 created_at=now, updated_at=now, submitted_at=now))
    key = f"{job.id}.png"
    for name in (key, *_beside(job.id)):
        svc.storage.put(name, io.BytesIO(b"bytes of " + name.encode()))
    svc.jobs.transition(job.id, st.READY, result_url="https://x/1.png")
    svc.jobs.transition(job.id, st.STORED, image={"sha256": "x"}, storage_key=key)
    timeline.record(svc, job.id, "download", outcome="stored")
    return job


def _files(svc) -> list[str]:
    return sorted(path.name for path in svc.storage.root.iterdir())


def test_a_stored_job_goes_with_its_result_every_file_beside_it_and_its_timeline(svc):
    job, other = _stored_job(svc), _stored_job(svc)
    assert svc.store.timeline.newest(job.id)

    assert remove_job(svc, job.id) is True

    assert svc.jobs.get(job.id) is None and svc.jobs.get_by_bfl_id(job.bfl_id) is None
    assert svc.store.timeline.newest(job.id) == []
    assert not [name for name in _files(svc) if name.startswith(job.id)]
    # Another job's files and timeline stay.
    assert _files(svc) == sorted([f"{other.id}.png", *_beside(other.id)])
    assert svc.jobs.get(other.id).status == st.STORED and svc.store.timeline.newest(other.id)
    listed, _ = svc.jobs.list(limit=10)
    assert [j.id for j in listed] == [other.id]


def test_removing_a_job_again_or_one_never_made_is_false(svc):
    job = _stored_job(svc)
    assert remove_job(svc, job.id) is True
    assert remove_job(svc, job.id) is False
    assert remove_job(svc, new_job_id()) is False
    assert remove_job(svc, "not-a-job-id") is False


def test_a_job_without_a_result_goes_and_nothing_else_is_touched(svc):
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="task-pending", created_at=now,
                                 updated_at=now, submitted_at=now))
    stored = _stored_job(svc)
    assert remove_job(svc, job.id) is True
    assert svc.jobs.get(job.id) is None
    assert _files(svc) == sorted([f"{stored.id}.png", *_beside(stored.id)])


def test_a_job_whose_record_expired_leaves_no_index_entry_nor_timeline(svc):
    job = _stored_job(svc)
    svc.redis.delete(KEYS.job(job.id))  # the record's TTL ran out; its index entries and timeline did not
    assert svc.redis.zscore(KEYS.all_jobs, job.id) is not None

    assert remove_job(svc, job.id) is False

    assert svc.redis.zscore(KEYS.all_jobs, job.id) is None
    assert svc.redis.zscore(KEYS.status(st.STORED), job.id) is None
    assert svc.store.timeline.newest(job.id) == []


# --- deleting frees nothing BFL still uses ------------------------------------------------------------

SENT = 1_000_000.0


@pytest.mark.parametrize(("holds", "age", "waits"), [
    (True, 5, True),                    # BFL runs its task (submitted, canceled and running on, being sent)
    (True, POLL_DEADLINE - 1, True),
    (True, POLL_DEADLINE, False),       # its hour is over: BFL runs no task that long (and retention finds it so)
    (False, 5, False),                  # no slot: in line, ended, tracked, or its slot already given back
])
def test_a_job_waits_for_bfl_only_while_it_holds_a_slot_within_its_tasks_hour(holds, age, waits):
    assert waits_for_bfl(holds, SENT, SENT + age) is waits


def _sent(svc, prompt: str, key_id: str | None = None) -> Job:
    """A job BFL has, sent from its slot as a worker's sender sends it."""
    job = queued_job(svc, prompt, key_id=key_id, send_here=True)
    assert submission.submit(svc, job.id) == st.SUBMITTED
    return svc.jobs.get(job.id)


def _gone(svc, job: Job) -> bool:
    """Whether the job and all kept for it are gone, its slot with them."""
    return (svc.jobs.get(job.id) is None and svc.redis.zscore(KEYS.all_jobs, job.id) is None
            and svc.store.timeline.newest(job.id) == [] and not svc.slots.holds(job))


def test_deleting_a_job_bfl_runs_keeps_its_slot_under_its_keys_max_active_until_bfl_ends_it(svc, sim):
    a_key, _ = key_admin.create_key(svc, {"name": "a", "max_active": 1}, time.time())
    b_key, _ = key_admin.create_key(svc, {"name": "b", "max_active": 1}, time.time())
    running = _sent(svc, "[pending] A's task, deleted while BFL runs it", key_id=a_key.id)

    assert remove_job(svc, running.id) is True

    # Ended as a cancel ends it, and kept with its slot (A's one) while BFL runs the task.
    kept = svc.jobs.get(running.id)
    assert (kept.status, kept.error["code"], kept.delete_asked_at is not None) == (st.CANCELED, "canceled", True)
    assert svc.slots.holds(running) and held_by(svc.slots, a_key.id) == 1
    nxt = queued_job(svc, "A's next job", key_id=a_key.id)
    assert waits.of(svc, nxt) == Waiting(WaitReason.KEY_MAX_ACTIVE) and svc.slots.dispatch().jobs == []
    # Another key's job goes at once.
    b_job = queued_job(svc, "B's job", key_id=b_key.id, send_here=True)
    assert svc.slots.holds(b_job) and held_by(svc.slots, b_key.id) == 1
    # Deleting it again changes nothing.
    assert remove_job(svc, running.id) is True and svc.slots.holds(running)

    sim.complete(running.bfl_id)
    report = BFLReport(running.bfl_id, st.BFL_READY, sample_url="https://delivery.example/done.png")
    outcome = apply_report(svc, running.id, report, from_callback(), expect_task=running.bfl_id)

    assert outcome == ReportOutcome.SLOT_FREED and _gone(svc, running)
    assert svc.slots.dispatch().jobs == [nxt.id]  # A's slot goes to its next job
    assert svc.slots.holds(b_job)


def test_a_canceled_job_still_running_at_bfl_goes_once_the_sweeps_poll_finds_its_task_ended(svc, sim):
    job = _sent(svc, "[pending] canceled, then deleted")
    canceling.cancel_job(svc, ADMIN, job.id)
    assert remove_job(svc, job.id) is True and svc.slots.holds(job)

    claim = time.time() + 120
    svc.redis.zadd(KEYS.due, {job.id: 0})
    assert job.id in svc.jobs.claim_due(time.time(), 100, claim)
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.RESCHEDULED  # still Pending at BFL
    assert svc.jobs.get(job.id) is not None and svc.slots.holds(job)

    sim.complete(job.bfl_id, "error")
    claim = time.time() + 120
    svc.redis.zadd(KEYS.due, {job.id: 0})
    assert job.id in svc.jobs.claim_due(time.time(), 100, claim)
    assert checking.check_job(svc, job.id, claim) == CheckOutcome.SLOT_FREED
    assert _gone(svc, job)


def test_a_job_in_line_or_past_its_tasks_hour_goes_at_once(svc, sim):
    in_line = queued_job(svc, "waits in line")
    assert remove_job(svc, in_line.id) is True and _gone(svc, in_line) and svc.slots.waiting(in_line.pool) == 0

    old = _sent(svc, "[pending] sent an hour ago")
    svc.redis.hset(KEYS.job(old.id), "submitted_at", time.time() - POLL_DEADLINE)
    assert remove_job(svc, old.id) is True and _gone(svc, old)


def test_a_delete_waits_for_a_send_under_way_and_changes_nothing_if_it_does_not_end(svc, sim):
    job = queued_job(svc, "being sent", send_here=True)
    lock = KEYS.submit_lock(job.id)
    assert svc.store.locks.acquire(lock, "a-sender", 60)
    with pytest.raises(SendUnderWay) as busy:
        remove_job(svc, job.id, wait=0.2)
    assert busy.value.status == 503
    assert svc.jobs.get(job.id).status == st.QUEUED and svc.slots.holds(job)
    svc.store.locks.release(lock, "a-sender")
    # Not sent after all: it ends unsent, its slot freed, and goes at once.
    assert remove_job(svc, job.id, wait=0.2) is True and _gone(svc, job)
