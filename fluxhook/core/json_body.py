"""JSON bodies (pure), read strictly and written a piece at a time.

Read: finite numbers, valid Unicode, bounded nesting.

Python's json module accepts NaN and Infinity (which fluxhook would then serve back as
invalid JSON), lone surrogates (which Redis cannot store), and nesting deep enough to
exhaust the stack when the value is encoded again; all of them are refused here.

Written: a value holding a 100 MB string is encoded, hashed, stored or sent without a second whole copy
of it in memory.
"""

from __future__ import annotations

import json
from typing import Any

from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import InvalidRequest

MAX_DEPTH = 32


class _NotANumber(ValueError):
    """NaN or Infinity in the body: Python reads them, JSON has no such numbers."""


def _no_constants(name: str) -> Any:
    raise _NotANumber(name)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw``; raise InvalidRequest unless it is strict JSON nested at most ``max_depth`` deep."""
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidRequest(f"the JSON is nested more than {max_depth} levels deep") from None
    except _NotANumber as exc:
        raise InvalidRequest(f"{exc} is not a JSON number: send a number or null") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno} "
                             "(a trailing comma or single quotes, perhaps)") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON: send it as UTF-8 text") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _valid_text(item)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise InvalidRequest(f"the JSON is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    _valid_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _valid_text(text: str) -> None:
    if text.isascii():  # most of a large body (base64): checked without a copy
        return
    try:
        for start in range(0, len(text), CHUNK):
            text[start:start + CHUNK].encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("the JSON holds a string that is not valid Unicode (a lone surrogate)") from None


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
