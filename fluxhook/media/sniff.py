"""What downloaded bytes are, judged by the bytes themselves (pure): image formats by their magic numbers,
MP4 (ISO base media) by its ``ftyp`` box, and whether an MP4's top-level boxes add up to the whole file."""

from __future__ import annotations

from typing import IO

IMAGE, VIDEO = "image", "video"
# Enough of the start of a file to tell every kind apart.
HEAD_BYTES = 16
_PRINTABLE = frozenset(range(0x20, 0x7F))
# Real files have a handful of top-level boxes (ftyp, moov, mdat, free...); more is not an MP4 we take.
MAX_TOP_LEVEL_BOXES = 10_000


def sniff(head: bytes) -> str | None:
    """``IMAGE`` for a JPEG, PNG or WebP start, ``VIDEO`` for an ISO base media (MP4) start, else None."""
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return IMAGE
    if len(head) >= 12 and head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        if 16 <= size <= 4096 and all(b in _PRINTABLE for b in head[8:12]):
            return VIDEO
    return None


def boxes_cover_file(file: IO[bytes], size: int) -> bool:
    """Whether the top-level boxes of an ISO base media file of ``size`` bytes end exactly at its end.

    A file cut short (or padded with garbage) fails: its last box claims bytes that are not there.
    """
    position, count = 0, 0
    while position < size:
        count += 1
        if count > MAX_TOP_LEVEL_BOXES:
            return False
        file.seek(position)
        header = file.read(16)
        if len(header) < 8:
            return False
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(b in _PRINTABLE for b in kind):
            return False
        if box_size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return False
            box_size = int.from_bytes(header[8:16], "big")
            if box_size < 16:
                return False
        elif box_size == 0:  # the last box, up to the end of the file
            return True
        elif box_size < 8:
            return False
        position += box_size
    return position == size
