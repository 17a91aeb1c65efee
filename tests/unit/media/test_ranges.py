"""Byte ranges asked of a stored file (fluxhook/media/ranges.py)."""

from __future__ import annotations

import pytest

from fluxhook.media.ranges import ByteRange, Unsatisfiable, parse_range


@pytest.mark.parametrize("header, size, wanted", [
    (None, 100, None),
    ("", 100, None),
    ("bytes=0-", 100, ByteRange(0, 99)),
    ("bytes=0-0", 100, ByteRange(0, 0)),
    ("bytes=10-19", 100, ByteRange(10, 19)),
    ("bytes=90-500", 100, ByteRange(90, 99)),
    ("bytes=-10", 100, ByteRange(90, 99)),
    ("bytes=-500", 100, ByteRange(0, 99)),
    ("BYTES = 5-6", 100, ByteRange(5, 6)),
    ("bytes=0-1,5-6", 100, None),  # several ranges: the whole file is a valid answer
    ("items=0-5", 100, None),
    ("bytes=5-1", 100, None),
    ("bytes=x-1", 100, None),
    ("bytes=-", 100, None),
    ("bytes", 100, None),
    ("bytes=\u00b2-", 100, None),  # digits int() refuses, or other scripts' digits: not a range
    ("bytes=-\u0663", 100, None),
    ("bytes=0-" + "9" * 5000, 100, ByteRange(0, 99)),  # longer than any file: to the end
    ("bytes=-" + "9" * 5000, 100, ByteRange(0, 99)),
    ("bytes=" + "0" * 5000 + "1-2", 100, ByteRange(1, 2)),
])
def test_parse_range(header, size, wanted):
    assert parse_range(header, size) == wanted


@pytest.mark.parametrize("header, size", [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                                          ("bytes=0-", 0), ("bytes=-5", 0)])
def test_ranges_outside_the_file(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_content_range():
    assert ByteRange(10, 19).content_range(100) == "bytes 10-19/100"
    assert ByteRange(10, 19).length == 10


def test_a_start_past_any_file_is_unsatisfiable_however_long():
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", 100)
