"""receiver/dashboard_batches.py: what a batch's page shows of it, and of each item on its contact sheet."""

from __future__ import annotations

from fluxhook.core.batch import Batch, new_batch_id
from fluxhook.core.job import Job
from receiver.dashboard_batches import batch_detail, sheet_field, tile


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


def test_the_sheet_shows_the_metadata_field_that_tells_its_items_apart():
    catalog = [{"catalog": "mugs", "sku": "F-1", "tags": ["a"]}, {"catalog": "mugs", "sku": "H-2"}, {}]
    assert sheet_field(catalog) == "sku"  # "catalog" is the same for each: it tells nothing apart
    assert sheet_field([{"catalog": "mugs"}, {"catalog": "mugs"}]) == "catalog"  # none does: the first plain one
    assert sheet_field([{"ok": True, "nested": {"sku": "x"}}, {}]) is None  # no plain value to show
    assert sheet_field([None, {}]) is None


def test_a_tile_shows_its_index_and_its_field():
    item = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status="stored", created_at=1.0, updated_at=1.0,
               batch_id="bat_01JZZZZZZZZZZZZZZZZZZZZZZZ", batch_index=1234, metadata={"sku": "MUG-0042-BLUE"},
               prompt="a blue mug")
    shown = tile(item, field="sku")
    assert (shown["label"], shown["meta"]) == ("#1,234", "MUG-0042-BLUE")
    assert shown["title"] == "#1,234 · sku MUG-0042-BLUE · stored · a blue mug"
    assert tile(item)["meta"] == "" and tile(item, field="color")["meta"] == ""
