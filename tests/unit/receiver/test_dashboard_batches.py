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
