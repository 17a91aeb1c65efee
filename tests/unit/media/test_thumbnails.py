"""fluxhook/media/thumbnails.py: a thumbnail from a file, and from a stream that cannot seek (as S3 storage returns
one), which is copied aside first: in memory up to ``SPOOL_IN_MEMORY``, beyond it on disk."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from fluxhook.media import storage
from fluxhook.media.storage import SPOOL_IN_MEMORY
from fluxhook.media.thumbnails import MAX_SIDE, make_thumbnail


class _Stream(io.RawIOBase):
    """Bytes that can only be read in order, as an S3 object's body."""

    def __init__(self, data: bytes):
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("source", [io.BytesIO, _Stream], ids=["file", "stream"])
def test_a_thumbnail_fits_max_side_from_a_file_or_a_stream(source):
    stream = source(_png(1024, 512))
    with Image.open(io.BytesIO(make_thumbnail(stream))) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (MAX_SIDE, MAX_SIDE // 2)


def test_a_stream_cannot_seek_and_a_file_can():
    assert storage.seekable(io.BytesIO(b"x")) is True
    assert storage.seekable(_Stream(b"x")) is False
    closed = io.BytesIO()
    closed.close()
    assert storage.seekable(closed) is False


@pytest.mark.parametrize("size, on_disk", [(SPOOL_IN_MEMORY, False), (SPOOL_IN_MEMORY + 1, True)])
def test_a_stream_is_copied_aside_in_memory_up_to_spool_in_memory(size, on_disk):
    with storage.spool(_Stream(bytes(size))) as copy:
        assert copy._rolled is on_disk
        assert copy.tell() == 0 and len(copy.read()) == size
