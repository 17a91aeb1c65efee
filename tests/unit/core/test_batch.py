"""fluxhook/core/batch.py: a batch's status rule, its progress and its object as the API shows it."""

from __future__ import annotations

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, BatchStatus, batch_id_floor, is_batch_id, new_batch_id, status_of
from fluxhook.core.job import batch_cancel_ending
from fluxhook.core.wait_reasons import Waiting, WaitReason


def test_a_cancel_decides_the_status_before_the_end():
    assert status_of(None, None) == BatchStatus.RUNNING
    assert status_of(5.0, None) == BatchStatus.ENDED
    assert status_of(None, 4.0) == status_of(5.0, 4.0) == BatchStatus.CANCELED


def test_progress_counts_ended_items_over_all_and_every_status_is_shown():
    batch = Batch(id=new_batch_id(), model="flux-2-pro", total=4, created_at=1.0,
                  counts={st.STORED: 1, st.FAILED: 1, st.SUBMITTED: 2}, cost_credits=6.0)
    shown = batch.to_api()
    assert shown["progress"] == 0.5 and shown["status"] == "running" and shown["cost"] == {"credits": 6.0}
    assert shown["counts"] == {**dict.fromkeys(st.STATUSES, 0), "stored": 1, "failed": 1, "submitted": 2, "total": 4}
    assert shown["sent"] == 0 and shown["waiting"] is None


def test_its_items_sent_and_why_its_queued_items_wait():
    batch = Batch(id=new_batch_id(), model="flux-2-pro", total=10, created_at=1.0, counts={st.QUEUED: 6, st.SUBMITTED: 4},
                  sent=4, waiting=Waiting(WaitReason.STORAGE))
    assert batch.to_api()["sent"] == 4 and batch.to_api()["waiting"] == {"reason": "storage"}


def test_ids_sort_by_time_and_are_told_from_anything_else():
    older, newer = new_batch_id(1_000.0), new_batch_id(2_000.0)
    assert is_batch_id(older) and not is_batch_id("job_" + older[4:]) and not is_batch_id("bat_../x")
    assert older < batch_id_floor(1_500.0) < newer


def test_a_batchs_cancel_aborts_what_is_unsent_and_leaves_what_bfl_has_to_be_stored():
    assert batch_cancel_ending(st.QUEUED).status == st.ABORTED
    assert batch_cancel_ending(st.QUEUED).code == "batch_canceled"
    # BFL has no cancel: an item it has is paid for, so it goes on and is stored as any item.
    assert batch_cancel_ending(st.SUBMITTED) is None and batch_cancel_ending(st.READY) is None
    assert batch_cancel_ending(st.STORED) is None


def test_a_batch_cut_short_says_how_many_of_how_many_were_made_and_what_to_do():
    whole = Batch(id=new_batch_id(), model="flux-2-pro", total=3, created_at=1.0, asked=3)
    cut = Batch(id=new_batch_id(), model="flux-2-pro", total=1_500, created_at=1.0, asked=10_000, canceled_at=2.0,
                interrupted_at=2.0)
    assert whole.to_api()["error"] is None
    error = cut.to_api()["error"]
    assert error["code"] == "creation_interrupted" and cut.status == BatchStatus.CANCELED
    assert "after 1,500 of its 10,000 items" in error["message"] and error["message"].endswith("send the batch again")
