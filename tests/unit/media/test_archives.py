"""fluxhook/media/archives.py: a ZIP streamed as it is made is one zipfile reads whole, and what it holds at once
does not grow with its files' sizes."""

from __future__ import annotations

import io
import os
import zipfile

from fluxhook.media.archives import CHUNK, zip_stream


def test_members_and_texts_come_back_whole_in_order_and_a_missing_member_is_left_out():
    first, second = os.urandom(3 * CHUNK + 17), b"small"
    members = [("00000.png", lambda: io.BytesIO(first)), ("00001.png", lambda: None),
               ("00002.jpg", lambda: io.BytesIO(second))]

    data = b"".join(zip_stream(members, [("results.jsonl", iter([b'{"index":0}\n', b'{"index":2}\n']))]))

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == ["00000.png", "00002.jpg", "results.jsonl"]
    assert archive.read("00000.png") == first and archive.read("00002.jpg") == second
    assert archive.read("results.jsonl") == b'{"index":0}\n{"index":2}\n'
    assert archive.testzip() is None


def test_no_piece_handed_on_holds_more_than_a_chunk_or_two_whatever_the_file():
    size = 40 * CHUNK
    pieces = list(zip_stream([("big.bin", lambda: io.BytesIO(bytes(size)))]))

    assert sum(map(len, pieces)) > size
    assert max(map(len, pieces)) <= 2 * CHUNK
