"""JSON written a piece at a time (pure): a value holding a 100 MB string is encoded, hashed, stored or sent
without a second whole copy of it in memory."""

from __future__ import annotations

import json

# A long string is encoded this many characters at a time.
CHUNK = 1024 * 1024


def json_chunks(value, chunk: int = CHUNK, *, sort_keys: bool = False, ensure_ascii: bool = True):
    """``value`` as compact JSON (``json.dumps(value, separators=(",", ":"), sort_keys=..., ensure_ascii=...)``),
    in pieces of about ``chunk`` characters: a long string comes a slice at a time, so no piece is a copy
    of a whole image."""
    if isinstance(value, str):
        yield '"'
        for start in range(0, len(value), chunk):
            # Escaping is per code point, so slices escape to what the whole string would.
            yield json.dumps(value[start:start + chunk], ensure_ascii=ensure_ascii)[1:-1]
        yield '"'
    elif isinstance(value, dict):
        yield "{"
        items = sorted(value.items()) if sort_keys else value.items()
        for n, (name, item) in enumerate(items):
            yield ("," if n else "") + json.dumps(str(name), ensure_ascii=ensure_ascii) + ":"
            yield from json_chunks(item, chunk, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from json_chunks(item, chunk, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
        yield "]"
    else:
        yield json.dumps(value)


class StreamedJSON:
    """A value's compact JSON as a request body sent a piece at a time (with its length, so it goes with a
    Content-Length), encoded as it is sent: a body of 100 MB is never a second whole copy in memory.
    Each iteration starts over, so a request may be sent again."""

    def __init__(self, value):
        self.value = value
        self._length: int | None = None

    def __iter__(self):
        for piece in json_chunks(self.value):
            yield piece.encode()  # ASCII: every non-ASCII character is escaped

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(len(piece) for piece in json_chunks(self.value))
        return self._length
