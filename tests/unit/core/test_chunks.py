"""fluxhook/core/chunks.py's ``CHUNK``: the one piece size of large data, which every piece-by-piece read, copy,
hash, spool and encode uses (a download, a stored file, a request body, a long JSON string)."""

from __future__ import annotations

import io

from fluxhook.core import chunks, json_body
from fluxhook.lifecycle.steps import task_inputs
from fluxhook.media import fetch, storage
from fluxhook.media.storage import FileStorage
from receiver import request_assembly, request_input


class _Recording(io.RawIOBase):
    """A non-seekable source of ``size`` zero bytes that records how much each read asked for."""

    def __init__(self, size: int):
        self.left, self.asked = size, []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.asked.append(len(buffer))
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return bytes(n)


def test_the_piece_is_one_mib():
    assert chunks.CHUNK == 1024 * 1024


def test_every_piece_by_piece_reader_uses_the_one_piece_size():
    # Imported from the one home, not a constant of their own that happens to be equal.
    for module in (json_body, task_inputs, fetch, storage, request_input, request_assembly):
        assert module.CHUNK is chunks.CHUNK, module.__name__
    assert json_body.json_chunks.__defaults__[0] is chunks.CHUNK


def test_a_stored_file_is_copied_a_piece_at_a_time(tmp_path):
    source = _Recording(3 * chunks.CHUNK + 5)
    FileStorage(tmp_path).put("a.bin", source)
    assert (tmp_path / "a.bin").stat().st_size == 3 * chunks.CHUNK + 5
    assert set(source.asked) == {chunks.CHUNK}


def test_a_long_json_string_is_encoded_a_piece_at_a_time():
    pieces = list(json_body.json_chunks("x" * (2 * chunks.CHUNK + 1)))
    assert [len(p) for p in pieces] == [1, chunks.CHUNK, chunks.CHUNK, 1, 1]
