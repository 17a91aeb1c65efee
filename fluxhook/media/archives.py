"""A ZIP archive streamed as it is made (a batch's files, SPEC §18): memory flat whatever the files' sizes.

``zipfile`` writes to an output it cannot seek (each member's sizes then follow its bytes, in a data descriptor); the
output here only gathers what it is given, and the archive is handed on a piece at a time. Files are stored, not
deflated: images and videos are compressed already.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

# Bytes read from a file, and at most gathered before they are handed on.
CHUNK = 256 * 1024
# A member: its name in the archive, and what opens its bytes (None: it is not there after all, and is left out).
Member = tuple[str, Callable[[], IO[bytes] | None]]


class _Gathered(io.RawIOBase):
    """What the archive writes, until it is taken; it counts what was written, as ``zipfile`` asks (``tell``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = bytearray()
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.pending += data
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def take(self) -> bytes:
        out = bytes(self.pending)
        self.pending.clear()
        return out


def zip_stream(members: Iterable[Member], texts: Iterable[tuple[str, Iterable[bytes]]] = ()) -> Iterator[bytes]:
    """The archive of ``members`` then ``texts`` (a name and its bytes, a piece at a time), as pieces of bytes."""
    out = _Gathered()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, opener in members:
            source = opener()
            if source is None:
                continue
            with source, archive.open(name, "w", force_zip64=True) as entry:
                while piece := source.read(CHUNK):
                    entry.write(piece)
                    if len(out.pending) >= CHUNK:
                        yield out.take()
            yield out.take()
        for name, pieces in texts:
            with archive.open(name, "w", force_zip64=True) as entry:
                for piece in pieces:
                    entry.write(piece)
                    if len(out.pending) >= CHUNK:
                        yield out.take()
            yield out.take()
    yield out.take()
