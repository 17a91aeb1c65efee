"""receiver/dashboard_batches.py: what a batch's page shows of it."""

from __future__ import annotations

from fluxhook.core.batch import Batch, new_batch_id
from receiver.dashboard_batches import batch_detail


def test_a_batch_cut_short_shows_its_error_in_words_and_a_whole_one_none():
    whole = Batch(id=new_batch_id(), model="flux-2-pro", total=3, created_at=1.0, asked=3)
    cut = Batch(id=new_batch_id(), model="flux-2-pro", total=1_500, created_at=1.0, asked=10_000, canceled_at=2.0,
                interrupted_at=2.0)
    assert batch_detail(whole, None)["error"] == ""
    assert batch_detail(cut, None)["error"] == cut.to_api()["error"]["message"]
    assert "1,500 of its 10,000 items" in batch_detail(cut, "app")["error"]


def test_a_canceled_batchs_bar_is_what_it_stored_and_its_counts_say_how_each_item_ended():
    canceled = Batch(id=new_batch_id(), model="flux-2-pro", total=1_000, created_at=1.0, asked=1_000, canceled_at=2.0,
                     ended_at=3.0, counts={"stored": 103, "aborted": 759, "failed": 138})
    shown = batch_detail(canceled, None)
    assert (shown["percent"], shown["progress"]) == (10, "canceled · 10 % stored")
    assert shown["counts"] == "103 stored · 138 failed · 759 aborted"
    assert shown["done"] == "1,000 of 1,000 ended"
    running = Batch(id=new_batch_id(), model="flux-2-pro", total=1_000, created_at=1.0, asked=1_000,
                    counts={"stored": 999, "queued": 1})
    assert (batch_detail(running, None)["percent"], batch_detail(running, None)["progress"]) == (99, "99 %")
