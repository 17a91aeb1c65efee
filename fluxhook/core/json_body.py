"""JSON bodies (pure), read strictly and written a piece at a time.

Read: finite numbers, valid Unicode, bounded nesting, each key once in an object.

Python's json module accepts NaN and Infinity (which fluxhook would then serve back as
invalid JSON), lone surrogates (which Redis cannot store), nesting deep enough to
exhaust the stack when the value is encoded again, and a key given twice in one object
(the last one silently wins, so a body read here could mean something else to the app
that sent it, or to a proxy that checked it); all of them are refused here.

Written: a value holding a 100 MB string is encoded, hashed, stored or sent without a second whole copy
of it in memory.
"""

from __future__ import annotations

import json
from typing import Any

from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import InvalidRequest

MAX_DEPTH = 32
# The most of a repeated key's name an error quotes.
_NAME_SHOWN = 60


class _NotANumber(ValueError):
    """NaN or Infinity in the body: Python reads them, JSON has no such numbers."""


class _RepeatedKey(ValueError):
    """A key given twice in one object."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _no_constants(name: str) -> Any:
    raise _NotANumber(name)


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict:
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _RepeatedKey(name)
            seen.add(name)
    return value


# Decodes as ``loads`` does, for readers that take a body a piece at a time (``core/json_stream.py``).
DECODER = json.JSONDecoder(object_pairs_hook=_each_key_once, parse_constant=_no_constants)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw``; raise InvalidRequest unless it is strict JSON nested at most ``max_depth`` deep, with each key
    once in every object."""
    try:
        value = json.loads(raw, object_pairs_hook=_each_key_once, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidRequest(f"the JSON is nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise refused(exc.msg, exc.lineno, exc.colno) from None
    except (_NotANumber, _RepeatedKey) as exc:
        raise refused_value(exc) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON: send it as UTF-8 text") from None
    check(value, max_depth)
    return value


def refused(msg: str, line: int, column: int) -> InvalidRequest:
    """The refusal of a body that is not JSON: what the decoder said, and where."""
    return InvalidRequest(f"the body is not valid JSON: {msg.lower()} at line {line}, column {column} "
                          "(a trailing comma or single quotes, perhaps)")


def refused_value(exc: ValueError) -> InvalidRequest:
    """The refusal of a body that is JSON but not strict JSON (a number JSON has not, a key given twice)."""
    if isinstance(exc, _RepeatedKey):
        return repeated(exc.name)
    return InvalidRequest(f"{exc} is not a JSON number: send a number or null")


def repeated(name: str) -> InvalidRequest:
    """The refusal of a body that gives the key ``name`` twice in one object."""
    shown = name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "..."
    return InvalidRequest(f"the key {json.dumps(shown)} is given more than once in one JSON object: give each key once "
                          "(which one was meant is not guessed)")


def check(value: Any, max_depth: int = MAX_DEPTH, *, depth: int = 1) -> None:
    """InvalidRequest unless ``value`` (decoded JSON, found at ``depth`` in its body: 1 is the whole body) holds only
    valid Unicode and the body is nested at most ``max_depth`` deep there."""
    _check(value, max_depth, depth)


def _check(value: Any, max_depth: int, depth: int = 1) -> None:
    stack = [(value, depth)]
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
