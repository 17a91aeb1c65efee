"""HTTP byte ranges (RFC 9110) for serving stored files (pure): what a ``Range`` header asks of a file."""

from __future__ import annotations

import re
from typing import NamedTuple

# ASCII digits only (str.isdigit() also takes '²' and other digits int() refuses), and a number this
# long is larger than any file: it is read as "past the end" without converting thousands of digits.
_NUMBER = re.compile(r"[0-9]+")
_MAX_DIGITS = 18
_PAST_ANY_END = 10**_MAX_DIGITS


class ByteRange(NamedTuple):
    """Bytes ``start`` to ``end`` inclusive, as ``Content-Range`` says them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """The range lies wholly outside the file: answer 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks of a file of ``size`` bytes; None to send the whole file.

    A header that cannot be parsed, another unit, or several ranges are ignored (the whole file is an
    allowed answer to any Range request); a single range wholly outside the file raises Unsatisfiable.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not _NUMBER.fullmatch(first)) or (last and not _NUMBER.fullmatch(last)) \
            or not (first or last):
        return None
    if not first:  # the last N bytes
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return ByteRange(max(0, size - suffix), size - 1)
    start = _number(first)
    end = _number(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise Unsatisfiable()
    return ByteRange(start, min(end, size - 1))


def _number(digits: str) -> int:
    stripped = digits.lstrip("0") or "0"
    return int(stripped) if len(stripped) <= _MAX_DIGITS else _PAST_ANY_END
