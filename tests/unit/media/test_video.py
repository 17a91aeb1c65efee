"""What a downloaded MP4 holds (fluxhook/media/video.py): boxes that cover the file, a real MP4 probed with its
poster, and MP4 files that lie."""

from __future__ import annotations

import io
import struct

import pytest

from fluxhook.core.errors import InvalidResult
from fluxhook.media.video import boxes_cover_file, inspect
from mp4_samples import free_box, make_mp4

MP4 = make_mp4(seconds=2)


def _boxes(*boxes: tuple[bytes, int]) -> bytes:
    return b"".join(struct.pack(">I", size) + kind + b"\0" * (size - 8) for kind, size in boxes)


def test_boxes_that_cover_the_file():
    data = _boxes((b"ftyp", 24), (b"moov", 100), (b"mdat", 1000))
    assert boxes_cover_file(io.BytesIO(data), len(data))
    large = _boxes((b"ftyp", 24)) + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 40) + b"\0" * 24
    assert boxes_cover_file(io.BytesIO(large), len(large))
    to_the_end = _boxes((b"ftyp", 24)) + struct.pack(">I", 0) + b"mdat" + b"\0" * 500
    assert boxes_cover_file(io.BytesIO(to_the_end), len(to_the_end))


@pytest.mark.parametrize("data", [
    _boxes((b"ftyp", 24), (b"moov", 100), (b"mdat", 1000))[:-1],  # cut short
    _boxes((b"ftyp", 24), (b"moov", 100)) + b"trailing garbage",
    _boxes((b"ftyp", 24)) + struct.pack(">I", 4) + b"moov",  # a box smaller than its header
    _boxes((b"ftyp", 24)) + struct.pack(">I", 100) + b"\x01\x02\x03\x04" + b"\0" * 92,  # not a box type
    _boxes((b"ftyp", 24)) + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 8) + b"\0" * 8,
])
def test_boxes_that_do_not(data):
    assert not boxes_cover_file(io.BytesIO(data), len(data))


def test_a_real_mp4_is_probed_and_gets_a_poster():
    info = inspect(io.BytesIO(MP4), len(MP4))
    assert (info.width, info.height, info.duration, info.fps, info.has_audio) == (320, 240, 2.0, 24.0, True)
    assert info.poster[:3] == b"\xff\xd8\xff"


def test_a_silent_mp4_with_its_index_last_and_padding_is_a_video():
    data = make_mp4(seconds=1, audio=False, faststart=False) + free_box(4096)
    info = inspect(io.BytesIO(data), len(data))
    assert info.has_audio is False and info.duration == 1.0


@pytest.mark.parametrize("data", [
    pytest.param(MP4[:32] + b"\x5a" * 4000, id="ftyp-then-garbage"),
    pytest.param(MP4[:len(MP4) // 2], id="truncated"),
    pytest.param(MP4[:32] + _boxes((b"moov", 64), (b"mdat", 4000)), id="boxes-without-media"),
    pytest.param(MP4[:32] + bytes(len(MP4) - 32), id="zeros-after-ftyp"),
])
def test_mp4s_that_lie_are_not_videos(data):
    with pytest.raises(InvalidResult):
        inspect(io.BytesIO(data), len(data))
