"""A batch's items spooled to a temporary file (fluxhook/core/batch_items.py): read back in their order a trip at a
time, bounded in count and in bytes; the first bad items' problems named, every bad one counted; the file gone once
closed."""

from __future__ import annotations

import os

from fluxhook.core import batch_items
from fluxhook.core.batch_items import NAMED_FIELDS, NAMED_ITEMS, BatchItem, ItemSpool


def test_items_come_back_in_their_order_a_trip_at_a_time_and_again_from_the_first():
    with ItemSpool.of(BatchItem({"prompt": f"item {i}", "n": i}, {"sku": i}) for i in range(7)) as spool:
        trips = list(spool.trips(3))
        again = [item for trip in spool.trips(100) for item in trip]

    assert [len(trip) for trip in trips] == [3, 3, 1] and spool.count == 7
    assert [item for trip in trips for item in trip] == again
    assert again[5] == BatchItem({"prompt": "item 5", "n": 5}, {"sku": 5})  # as given, metadata and all


def test_a_trip_of_large_items_holds_about_trip_bytes_whatever_its_count(monkeypatch):
    monkeypatch.setattr(batch_items, "TRIP_BYTES", 10_000)
    with ItemSpool.of(BatchItem({"prompt": "x" * 3_000}) for _ in range(10)) as spool:
        assert [len(trip) for trip in spool.trips(500)] == [4, 4, 2]  # past 10,000 bytes at the 4th
    with ItemSpool.of([BatchItem({"prompt": "x" * 50_000}), BatchItem({"prompt": "y"})]) as spool:
        assert [len(trip) for trip in spool.trips(500)] == [1, 1]  # an item larger than a trip goes alone


def test_refused_items_keep_their_places_the_first_ones_named_and_every_one_counted():
    spool = ItemSpool()
    spool.add(BatchItem({"prompt": "good"}))
    for _ in range(NAMED_ITEMS + 5):
        spool.refuse([(f"field {n}", "what to do") for n in range(NAMED_FIELDS + 2)])
    spool.add(BatchItem({"prompt": "good too"}))

    items = [item for trip in spool.trips(50) for item in trip]
    assert items[0] == BatchItem({"prompt": "good"}) and items[-1] == BatchItem({"prompt": "good too"})
    assert items[1:-1] == [None] * (NAMED_ITEMS + 5) and spool.count == NAMED_ITEMS + 7
    assert spool.refused == NAMED_ITEMS + 5
    assert {p["index"] for p in spool.problems} == set(range(1, NAMED_ITEMS + 1))  # the first NAMED_ITEMS bad ones
    assert [p["field"] for p in spool.problems if p["index"] == 1] == [f"field {n}" for n in range(NAMED_FIELDS)]
    spool.close()


def test_a_closed_spool_leaves_no_file():
    spool = ItemSpool.of([BatchItem({"prompt": "x"})])
    descriptor = spool._file.fileno()
    assert os.fstat(descriptor).st_nlink == 0  # never named in a directory: nothing to leave behind
    spool.close()
    assert spool._file.closed
