"""JSON bodies (pure), read strictly and written a piece at a time; and the rest of a request read as strictly: a name
it does not define refused, a whole number in one spelling.

Read: finite numbers, valid Unicode, bounded nesting, each key once in an object. Python's json module accepts NaN and Infinity
(which fluxhook would then serve back as invalid JSON), lone surrogates (which Redis cannot store), nesting deep enough to exhaust
the stack when the value is encoded again, and a key given twice in one object (the last one silently wins, so a body read here
could mean something else to the app that sent it, or to a proxy that checked it); all of them are refused here.

Written: a value holding a 100 MB string is encoded, hashed, stored or sent without a second whole copy
of it in memory.

Read a piece at a time: a large body (a batch's, up to ``MAX_BATCH_BYTES``) is parsed as it is read, never held whole
nor decoded to a second copy of its text: ``ndjson_lines`` gives one line at a time; ``load_object`` one object, each value
decoded once it is whole and an array's elements one at a time, so the text held is one element's (``Stream``: one field's
array handed on an element at a time, not kept). Both decode with ``loads``'s decoder (``DECODER``): the same numbers, the
same refusals and the same messages, whether a body comes whole or in pieces.

Names and numbers: a field or query parameter the API does not define is refused by name, never silently ignored; and the whole
numbers a request carries (a query value, a header, a form field) are read one way everywhere. Python's ``int()`` is lenient where
a request should not be: it takes a sign, surrounding spaces, underscores (``1_0``) and any script's digits (``٥``), so one number
has many spellings, each a distinct URL a cache keeps apart; and it refuses text of more than 4,300 digits with a ``ValueError``
that, uncaught, answers 500. Here the length is bounded before any digit is read, and a number has one spelling.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Iterator, NamedTuple

from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import InvalidRequest, UnknownField

MAX_DEPTH = 32
_TOO_DEEP = f"the JSON is nested more than {MAX_DEPTH} levels deep"
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


# Decodes as ``loads`` does, for the readers that take a body a piece at a time (``load_object``, ``ndjson_lines``).
DECODER = json.JSONDecoder(object_pairs_hook=_each_key_once, parse_constant=_no_constants)


def loads(raw: bytes | str) -> Any:
    """Decode ``raw``; raise InvalidRequest unless it is strict JSON nested at most ``MAX_DEPTH`` deep, with each key
    once in every object."""
    try:
        value = json.loads(raw, object_pairs_hook=_each_key_once, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidRequest(_TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        raise refused(exc.msg, exc.lineno, exc.colno) from None
    except (_NotANumber, _RepeatedKey) as exc:
        raise refused_value(exc) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON: send it as UTF-8 text") from None
    check(value)
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


def check(value: Any, *, depth: int = 1) -> None:
    """InvalidRequest unless ``value`` (decoded JSON, found at ``depth`` in its body: 1 is the whole body) holds only
    valid Unicode and the body is nested at most ``MAX_DEPTH`` deep there."""
    stack = [(value, depth)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _valid_text(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise InvalidRequest(_TOO_DEEP)
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


# --- Names and numbers a request carries ---

# How many unknown names one message lists.
NAMED_AT_MOST = 5


def refuse_unknown(given: Iterable[str], defined: Sequence[str], *, where: str, kind: str = "field",
                   hints: Mapping[str, str] | None = None, advice: str = "") -> None:
    """UnknownField naming the first name in ``given`` that is not ``defined`` (and up to ``NAMED_AT_MOST`` more):
    the ``hints`` entry of that name if it has one, else ``advice``, then what ``where`` takes. ``kind``: what a
    name is there ('field', 'query parameter')."""
    unknown = [name for name in given if name not in defined]
    if not unknown:
        return
    first = unknown[0]
    names = ", ".join(repr(name[:60]) for name in unknown[:NAMED_AT_MOST])
    hint = (hints or {}).get(first) or advice
    raise UnknownField(f"unknown {kind}{'s' if len(unknown) > 1 else ''} {names}: {hint + ' ' if hint else ''}"
                       f"({where} takes {', '.join(defined)})", field=first)


def decimal(text: str, most: int) -> int | None:
    """The number ``text`` spells if it is a whole number from 0 to ``most`` in plain decimal: ASCII digits only, no
    sign, space, underscore or leading zero (``0`` itself is one); None for any other text. The caller's refusal names
    the text and what it allows."""
    if not 0 < len(text) <= len(str(most)) or not text.isascii() or not text.isdigit():
        return None
    if text[0] == "0" and len(text) > 1:
        return None
    number = int(text)
    return number if number <= most else None


# --- Read a piece at a time ---

# Reads up to n bytes of the body; b"" once it has ended.
Read = Callable[[int], bytes]
# Bytes read at a time: the text held beyond the values parsed is about this (a value longer than it, its length).
PIECE = 64 * 1024

# A body that is JSON but no object.
NOT_AN_OBJECT = "the body must be a JSON object (Content-Type: application/json)"
_SPACE = re.compile(r"[ \t\n\r]*")
# A decoder's error this close to the end of the text read so far may be the body cut there (``tru``, ``-``, ``\u00``):
# more is read and the value decoded again.
_CUT_NEAR_END = 12


def ndjson_lines(read: Read, chunk: int = PIECE) -> Iterator[tuple[int, bytes]]:
    """Each line of the body (its number from 1, and its bytes without the ``\\n``), read ``chunk`` bytes at a time.
    Lines end at ``\\n`` alone: JSON may hold U+2028 and its kind unescaped, which ``str.splitlines`` would split at."""
    buffer, number, start, searched = bytearray(), 0, 0, 0
    while True:
        end = buffer.find(b"\n", searched)
        if end >= 0:
            number += 1
            yield number, bytes(buffer[start:end])
            start = searched = end + 1
            continue
        piece = read(chunk)
        if not piece:
            break
        del buffer[:start]  # once per piece read, not once per line: many short lines cost no copy each
        start, searched = 0, len(buffer)
        buffer += piece
    if start < len(buffer):
        yield number + 1, bytes(buffer[start:])


class Stream(NamedTuple):
    """The field of a body's object whose array's elements go to ``each`` one at a time, as each is whole: the
    object holds this ``Stream`` itself for the field, not the array."""

    field: str
    each: Callable[[Any], None]


def load_object(read: Read, *, stream: Stream | None = None, chunk: int = PIECE) -> dict[str, Any]:
    """The body, which must be one JSON object, read ``chunk`` bytes at a time; InvalidRequest as ``loads``
    refuses a body. A value that is an array is decoded an element at a time; ``stream``'s field's, handed on."""
    text = _Text(read, chunk)
    if not text.next_is("{"):
        raise InvalidRequest(NOT_AN_OBJECT)
    text.pos += 1
    value: dict[str, Any] = {}
    if text.next_is("}"):
        text.pos += 1
    else:
        while True:
            if not text.next_is('"'):
                raise text.refused("Expecting property name enclosed in double quotes")
            name = text.value(depth=2)
            if name in value:
                raise repeated(name)
            text.expect(":")
            if not text.next_is("["):
                value[name] = text.value(depth=2)
            elif stream is not None and name == stream.field:
                for element in text.elements():
                    stream.each(element)
                value[name] = stream
            else:
                value[name] = list(text.elements())
            if text.next_is("}"):
                text.pos += 1
                break
            text.expect(",")
    if not text.next_is(None):
        raise text.refused("Extra data")
    return value


class _Text:
    """The body's text, decoded from UTF-8 as it is read; only the part not yet parsed is held (``text[pos:]``)."""

    def __init__(self, read: Read, chunk: int):
        self._read, self._chunk = read, chunk
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text, self.pos, self.ended = "", 0, False
        # Where ``text`` starts in the body: lines before it, and the column its first character is at (from 0).
        self._lines, self._column = 0, 0

    def more(self, at_least: int = 0) -> bool:
        """Read at least ``at_least`` more characters (one chunk's worth at least), dropping what was parsed; False
        once the body has ended."""
        if self.ended:
            return False
        if self.pos:
            parsed = self.text[:self.pos]
            newlines = parsed.count("\n")
            self._lines += newlines
            self._column = len(parsed) - parsed.rfind("\n") - 1 if newlines else self._column + len(parsed)
            self.text, self.pos = self.text[self.pos:], 0
        pieces, got = [], 0
        while got < max(at_least, 1):
            raw = self._read(self._chunk)
            try:
                piece = self._utf8.decode(raw, final=not raw)
            except UnicodeDecodeError:
                raise InvalidRequest("the body is not valid JSON: it is not UTF-8") from None
            pieces.append(piece)
            got += len(piece)
            if not raw:
                self.ended = True
                break
        self.text += "".join(pieces)
        return True

    def next_is(self, char: str | None) -> bool:
        """Whether the next character past white space is ``char`` (None: the body's end)."""
        self.skip_space()
        if self.pos >= len(self.text):
            return char is None
        return self.text[self.pos] == char

    def skip_space(self) -> None:
        """Move past white space, reading more while the text read so far ends in it."""
        while True:
            space = _SPACE.match(self.text, self.pos)  # matches "" too
            self.pos = space.end() if space else self.pos
            if self.pos < len(self.text) or not self.more():
                return

    def expect(self, char: str) -> None:
        if not self.next_is(char):
            raise self.refused(f"Expecting '{char}' delimiter")
        self.pos += 1

    def value(self, depth: int) -> Any:
        """The next JSON value, at ``depth`` in the body, read until it is whole; refused as ``loads``
        refuses one."""
        self.skip_space()
        while True:
            try:
                value, end = DECODER.raw_decode(self.text, self.pos)
            except RecursionError:
                raise InvalidRequest(_TOO_DEEP) from None
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.text) - _CUT_NEAR_END
                if self.ended or not cut:
                    raise self.refused(exc.msg, exc.pos) from None
                self.more(len(self.text) - self.pos)  # twice as much text: a long value costs its length, not its square
                continue
            except ValueError as exc:  # NaN, a key given twice
                raise refused_value(exc) from None
            if end > len(self.text) - _CUT_NEAR_END and self.more():
                continue  # a number may go on in the next piece (``1.`` of ``1.5``)
            self.pos = end
            check(value, depth=depth)
            return value

    def elements(self) -> Iterator[Any]:
        """The elements of the array that comes next (a value of the body's object), each decoded once it is
        whole."""
        self.expect("[")
        if self.next_is("]"):
            self.pos += 1
            return
        while True:
            yield self.value(depth=3)
            if self.next_is("]"):
                self.pos += 1
                return
            self.expect(",")

    def refused(self, msg: str, at: int | None = None) -> InvalidRequest:
        """The refusal of the body as not JSON, at ``at`` in ``text`` (the parser's place by default)."""
        at = self.pos if at is None else at
        newline = self.text.rfind("\n", 0, at)
        line = self._lines + self.text.count("\n", 0, at) + 1
        column = at - newline if newline >= 0 else self._column + at + 1
        return refused(msg, line, column)


# --- Written a piece at a time ---

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
