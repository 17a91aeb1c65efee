"""A batch's own input kept in storage (fluxhook/lifecycle/steps/batch_inputs.py), on a real file store: each item's
line read alone or all in order, each end user's items, and nothing once dropped."""

from __future__ import annotations

from types import SimpleNamespace

from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.lifecycle.steps import batch_inputs
from fluxhook.lifecycle.steps.batch_inputs import ItemLine
from fluxhook.media.storage import FileStorage

BATCH = "bat_01JD5Q00000000000000000000"
OTHER = "bat_01JD5Q00000000000000001000"


def test_each_items_line_is_read_alone_or_all_in_order_and_goes_with_its_batch(tmp_path):
    svc = SimpleNamespace(storage=FileStorage(tmp_path))
    metadata = [{"sku": i, "note": "a\nline \u2028 \u00e9\U0001F98A" * (i % 3)} for i in range(1200)]
    items = ItemSpool.of(BatchItem({"prompt": f"item {i}"}, metadata[i], "ann" if i % 4 == 0 else None)
                         for i in range(1200))
    theirs = ItemSpool.of([BatchItem({"prompt": "B's"}, {"sku": "b"})])

    whose = batch_inputs.keep(svc, BATCH, items, "bob")
    batch_inputs.keep(svc, OTHER, theirs, None)

    expected = [ItemLine(metadata[i], "ann" if i % 4 == 0 else "bob") for i in range(1200)]
    assert whose == {"ann": list(range(0, 1200, 4)), "bob": [i for i in range(1200) if i % 4]}
    assert list(batch_inputs.lines(svc, BATCH)) == expected
    assert [batch_inputs.line(svc, BATCH, i) for i in (0, 1, 599, 1199)] == [expected[i] for i in (0, 1, 599, 1199)]
    # The other batch's input beside it is its own.
    assert list(batch_inputs.lines(svc, OTHER)) == [ItemLine({"sku": "b"}, None)]

    batch_inputs.drop(svc, BATCH)

    assert batch_inputs.line(svc, BATCH, 0) is None and list(batch_inputs.lines(svc, BATCH)) == []
    assert batch_inputs.line(svc, OTHER, 0) == ItemLine({"sku": "b"}, None)
