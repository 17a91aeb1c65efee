"""A ZIP archive streamed as it is made (a batch's files): memory flat whatever the files' sizes; and the
names of a batch's files, by their items' index or from a field of their metadata, the same in the archive the API
streams (``name_from``) and in the directory ``fluxhook batch download --name-from`` writes.

``zipfile`` writes to an output it cannot seek (each member's sizes then follow its bytes, in a data descriptor); the
output here only gathers what it is given, and the archive is handed on a piece at a time. Files are stored, not
deflated: images and videos are compressed already.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

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


# The results' name in a batch's archive, beside its files.
RESULTS = "results.jsonl"
# What a file name made from an item's metadata may not hold: a path's separators, NUL and control characters, and
# what Windows refuses in a name; each becomes _. Its length is capped, and it never starts with a dot (no hidden
# file, no `..`).
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
NAME_MOST = 120


def safe_name(value: Any) -> str | None:
    """A file name's stem made from a metadata value (a string or a number), safe to write inside a directory: no
    separator, NUL or control character (each becomes _), no leading dot, at most ``NAME_MOST`` characters; None for
    a value that gives none (missing, empty, an object, only dots)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    stem = _UNSAFE.sub("_", str(value)).strip().lstrip(".").strip()[:NAME_MOST].rstrip(". ")
    return stem or None


class MemberNames:
    """The names a batch's files take from their items' ``metadata[field]``, given one at a time in the items' order
    (as the archive is streamed): no two files get one name (case apart), and none is results.jsonl."""

    def __init__(self, field: str):
        self.field = field
        self._taken = {RESULTS}

    def name(self, archived: str, metadata: Any) -> str:
        """The name of the file archived as ``archived`` (``00042.png``: its item's index and suffix), whose item has
        ``metadata``: ``metadata[field]`` (``safe_name``) with the file's own suffix; a name an earlier file took gets
        the item's index added (``sku-00042.png``); an item without the field keeps its index name."""
        index_stem, dot, suffix = archived.partition(".")
        suffix = dot + suffix
        stem = safe_name(metadata.get(self.field)) if isinstance(metadata, Mapping) else None
        candidates = [f"{stem}{suffix}", f"{stem}-{index_stem}{suffix}"] if stem else []
        candidates.append(archived)
        name = next((c for c in candidates if c.lower() not in self._taken), None)
        number = 2
        while name is None:
            name = f"{index_stem}-{number}{suffix}"
            name = None if name.lower() in self._taken else name
            number += 1
        self._taken.add(name.lower())
        return name


def file_names(archived: list[str], metadata: Mapping[int, Any], field: str) -> dict[str, str]:
    """Each file of a batch's archive (named by its item's index) named as ``MemberNames`` names it, in the items'
    order, from its item's ``metadata`` (by index); results.jsonl keeps its name."""
    names = MemberNames(field)
    named: dict[str, str] = {}
    for archived_name in sorted(archived, key=lambda n: (n == RESULTS, n)):
        index_stem = archived_name.partition(".")[0]
        meta = metadata.get(int(index_stem)) if index_stem.isdigit() else None
        named[archived_name] = archived_name if archived_name == RESULTS else names.name(archived_name, meta)
    return named
