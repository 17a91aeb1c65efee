"""fluxhook/media/storage.py's ``SPOOL_IN_MEMORY``: the one size up to which S3 storage keeps a file being
stored in memory, beyond it in a temporary file, both for a download (``new_upload``) and for a source that
cannot seek (``_Measured``)."""

from __future__ import annotations

import io

import pytest

from fluxhook.media import storage
from fluxhook.media.storage import SPOOL_IN_MEMORY, S3Storage


class _Unseekable(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


@pytest.mark.parametrize("size, on_disk", [(SPOOL_IN_MEMORY, False), (SPOOL_IN_MEMORY + 1, True)])
def test_a_source_that_cannot_seek_is_spooled_in_memory_up_to_spool_in_memory(size, on_disk):
    with storage._Measured(_Unseekable(size), None) as measured:
        assert measured.size == size
        assert measured.file._rolled is on_disk


def test_a_download_for_s3_is_spooled_in_memory_up_to_the_same_size():
    upload = S3Storage.new_upload(object.__new__(S3Storage))  # needs no bucket nor client
    upload.write(bytes(SPOOL_IN_MEMORY))
    assert upload._rolled is False
    upload.write(b"x")
    assert upload._rolled is True
