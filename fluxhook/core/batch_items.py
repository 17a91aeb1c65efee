"""A batch's items between its request's body and their making (docs/api.md, docs/operating.md "What a key holds is bounded").

A batch body may be ``MAX_BATCH_BYTES`` (64 MiB), and kept as parsed Python values its items take several times that. Here each
item goes, as soon as it is read, to a temporary file (one compact JSON line an item, the file deleted once closed); what stays in
memory is counts and the first ``NAMED_ITEMS`` bad items' problems. The making reads the items back from the file a trip at a time
(``ITEMS_PER_TRIP`` items, at most ``TRIP_BYTES`` of them but one), so whatever the body's size, and its items', a batch holds
about one trip of items in memory at once.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

# Most bad items an answer names (the count says how many there are), and most of one item's fields.
NAMED_ITEMS = 100
NAMED_FIELDS = 10
# Most bytes of items (as spooled) a trip holds, past its first item: 500 items of 25 kB prompts were 12 MB.
TRIP_BYTES = 2 * 2**20
# Most end users one batch's items may name: each is checked against its key's limits before any item is made.
MAX_END_USERS = 1000
# The line of an item whose shape was refused: its place is kept, and it is never checked nor made.
_REFUSED = b"null\n"


@dataclass(frozen=True)
class BatchItem:
    """One item: BFL's request for the batch's model, and the metadata its job keeps."""

    input: dict
    metadata: dict = field(default_factory=dict)
    # The app's own user the item is for (``core.end_users``), its own or the batch's; None: none.
    end_user: str | None = None


class ItemSpool:
    """A batch's items in their order, in a temporary file; ``count`` of them, ``refused`` of which were refused for
    their shape while read (the first ``NAMED_ITEMS`` of those named in ``problems``: ``{"index", "field",
    "message"}``, at most ``NAMED_FIELDS`` an item). Closed, the file is deleted."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="fluxhook-batch-")
        self.count = 0
        self.refused = 0
        self.problems: list[dict] = []
        # The end users its items name, each with how many of them (at most MAX_END_USERS + 1 kept: one more says
        # there are too many).
        self.end_users: Counter[str] = Counter()

    @classmethod
    def of(cls, items: Iterable[BatchItem]) -> ItemSpool:
        """A spool of ``items`` (each of a good shape)."""
        spool = cls()
        for item in items:
            spool.add(item)
        return spool

    def add(self, item: BatchItem) -> None:
        """The next item, of a good shape."""
        # UTF-8 as sent, not escaped: a line is no larger than its item was in the body (a body read here holds no
        # lone surrogate: ``json_body`` refuses one).
        kept = [item.input, item.metadata] + ([item.end_user] if item.end_user is not None else [])
        line = json.dumps(kept, separators=(",", ":"), ensure_ascii=False) + "\n"
        self._file.write(line.encode())
        self.count += 1
        if item.end_user is not None and (item.end_user in self.end_users or len(self.end_users) <= MAX_END_USERS):
            self.end_users[item.end_user] += 1

    def refuse(self, problems: list[tuple[str, str]]) -> None:
        """The next item, refused for its shape: each of ``problems`` is its field and what to do."""
        if self.refused < NAMED_ITEMS:
            self.problems += [{"index": self.count, "field": where, "message": message}
                              for where, message in problems[:NAMED_FIELDS]]
        self._file.write(_REFUSED)
        self.refused += 1
        self.count += 1

    def trips(self, size: int) -> Iterator[list[BatchItem | None]]:
        """The items in their order, ``size`` at a time or fewer past ``TRIP_BYTES``, each trip read from the file as
        it comes (None: an item refused for its shape). Each call reads them from the first."""
        self._file.flush()
        self._file.seek(0)
        lines: list[bytes] = []
        held = 0
        for line in self._file:
            lines.append(line)
            held += len(line)
            if len(lines) >= size or held >= TRIP_BYTES:
                yield _items(lines)
                lines, held = [], 0
        if lines:
            yield _items(lines)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ItemSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _items(lines: list[bytes]) -> list[BatchItem | None]:
    return [None if line == _REFUSED else BatchItem(*json.loads(line)) for line in lines]
