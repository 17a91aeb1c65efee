"""A batch's own input as its results need it, kept with its files in storage, not in Redis: each item's metadata and
end user, so that an item that ended unsent and keeps no record of its own (``Batches.prune_unsent``) still gives its
line and its job (docs/batches.md). Written as the batch is made, before its first item; deleted with the batch.

The stored file: its items' lines' offsets (``OFFSET`` each, one more than its items: the last line's end), then a
compact JSON line an item, ``[metadata, end_user]``; so one item's line is two ranged reads, and every line one read.
"""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from fluxhook.core.batch_items import ItemSpool
from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import StorageError

if TYPE_CHECKING:
    from fluxhook.services import Services

OFFSET = struct.Struct(">I")
# Items read from the batch's spool at once as the file is written.
_ITEMS_READ = 500


@dataclass(frozen=True)
class ItemLine:
    """What a batch keeps of one item beside its record: its metadata as given and its end user."""

    metadata: dict = field(default_factory=dict)
    end_user: str | None = None


def key_for(batch_id: str) -> str:
    """The storage key of a batch's items' lines (beside its items' results)."""
    return f"{batch_id}-items.bin"


def keep(svc: "Services", batch_id: str, items: ItemSpool, end_user: str | None) -> dict[str, list[int]]:
    """Store the batch's items' lines, read from their spool; each end user's items' indexes, in their order (the
    batch's ``end_user`` for those that name none)."""
    whose: dict[str, list[int]] = {}
    offsets = [OFFSET.size * (items.count + 1)]
    with tempfile.TemporaryFile(prefix="fluxhook-batch-lines-") as out:
        out.seek(offsets[0])
        index = 0
        for trip in items.trips(_ITEMS_READ):
            for item in trip:
                line = ItemLine() if item is None else ItemLine(item.metadata, item.end_user or end_user)
                if line.end_user is not None:
                    whose.setdefault(line.end_user, []).append(index)
                offsets.append(offsets[-1] + out.write(_encoded(line)))
                index += 1
        out.seek(0)
        out.write(b"".join(OFFSET.pack(at) for at in offsets))
        out.seek(0)
        svc.storage.put(key_for(batch_id), out)
    return whose


def _encoded(line: ItemLine) -> bytes:
    # JSON escapes a newline inside a string: the one newline is the line's end.
    return json.dumps([line.metadata, line.end_user], separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _decoded(raw: bytes) -> ItemLine:
    try:
        metadata, end_user = json.loads(raw)
    except ValueError as exc:
        raise StorageError("a batch's stored items cannot be read") from exc
    return ItemLine(metadata, end_user)


def line(svc: "Services", batch_id: str, index: int) -> ItemLine | None:
    """The ``index``-th item's line (0 the first); None when the batch kept none (made before batches kept them)."""
    key = key_for(batch_id)
    bounds = svc.storage.open_at(key, OFFSET.size * index, OFFSET.size * (index + 2) - 1)
    if bounds is None:
        return None
    with bounds:
        start, end = struct.unpack(">II", _read(bounds, 2 * OFFSET.size))
    kept = svc.storage.open_at(key, start, end - 1)
    if kept is None:
        return None
    with kept:
        return _decoded(_read(kept, end - start))


def lines(svc: "Services", batch_id: str) -> Iterator[ItemLine]:
    """Every item's line in the items' order, read as they are used (none when the batch kept none)."""
    file = svc.storage.open(key_for(batch_id))
    if file is None:
        return
    with file:
        first = OFFSET.unpack(_read(file, OFFSET.size))[0]
        _read(file, first - OFFSET.size)  # the rest of the offsets
        pending = b""
        while chunk := file.read(CHUNK):
            *whole, pending = (pending + chunk).split(b"\n")
            yield from (_decoded(raw) for raw in whole)


def _read(file: IO[bytes], size: int) -> bytes:
    """Exactly ``size`` bytes of ``file`` (a stream may give fewer a read); StorageError if it ends before."""
    got = b""
    while len(got) < size:
        chunk = file.read(size - len(got))
        if not chunk:
            raise StorageError("a batch's stored items end short")
        got += chunk
    return got


def drop(svc: "Services", batch_id: str) -> None:
    """Forget a batch's items' lines (the batch goes, or was never made); never fails the caller."""
    try:
        svc.storage.delete(key_for(batch_id))
    except (StorageError, OSError):
        pass  # retention removes what a failing store kept
