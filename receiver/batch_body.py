"""The body of ``POST /v1/batches`` (SPEC §18, §7 "What a key holds is bounded"): at most ``MAX_BATCH_BYTES``, read
a piece at a time and parsed as it is read, and the memory it took given back to the system after.

The web worker has the body whole before the app runs (in a temporary file past a few MiB:
``receiver/buffering_worker.py``); read whole again here (werkzeug's ``get_data``), decoded to text and parsed, a
250 MB body took a web process to 895 MB, and four at once to 2.8 GB, which it kept. Here the body is never held:
NDJSON a line at a time, JSON an item at a time (``core/json_stream.py``), so what a batch holds is its items as
parsed, once; and once its request ends, the memory its items took is handed back (glibc keeps freed memory for the
process otherwise, so a web process that once took four large batches would hold their size for good).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import IO, Any, Callable
from urllib.parse import unquote

from flask import g, request

from fluxhook.core import json_body, json_stream
from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import FluxhookError, InvalidRequest, PayloadTooLarge
from fluxhook.core.strict_input import refuse_unknown

from .json_request import require_json

log = logging.getLogger("fluxhook.batches")

NDJSON = "application/x-ndjson"
BATCHES_PATH = "/v1/batches"
# The fields of POST /v1/batches (with NDJSON, its query parameters but ``items``).
BATCH_FIELDS = ("model", "items", "metadata", "notify_url", "notify_events")
# A body at least this large gives its memory back once its request has ended: a smaller one's is reused as it is.
GIVE_BACK_FROM = 4 * 2**20


def read(limit: int) -> dict[str, Any]:
    """The body as one JSON object (with NDJSON: its items, and the rest from the query), parsed as it is read;
    ``PayloadTooLarge`` (413) past ``limit`` bytes, before it is read when its length is announced."""
    size = request.content_length
    if size is not None and size > limit:
        discard()  # under the Procfile's web, never received (``refused_before_body``): nothing to read
        raise _too_large(limit)
    body = _Capped(request.stream, limit)
    g.batch_body = body
    try:
        if request.mimetype == NDJSON:
            return _from_ndjson(body)
        require_json()
        return json_stream.load_object(body.read)
    except FluxhookError:  # too large, or refused before its end: the rest is read, not parsed
        discard()
        raise


def refused_before_body(limit: int, method: str, target: str, header: Callable[[str], str | None]) -> bool:
    """Whether a batch is refused (413) whatever its body, its announced length past ``limit``: asked by the web worker
    once the head is in, so such a body is never received, let alone spooled."""
    if method != "POST" or unquote(target.partition("?")[0]) != BATCHES_PATH:
        return False
    length = (header("Content-Length") or "").strip()
    return length.isdigit() and int(length) > limit


def discard() -> None:
    """Read the rest of the body and drop it, before a refusal that did not need it: the web worker keeps a
    connection open for the next request only once its last request's body was read to the end (a refusal that left it
    unread answered with keep-alive, then the connection was cut under the client's next request)."""
    while request.stream.read(json_stream.PIECE):
        pass


def give_back_memory() -> None:
    """The memory a large body's items took, given back to the system once its request has ended (glibc's
    ``malloc_trim``; elsewhere the allocator's own way stands)."""
    body = g.pop("batch_body", None)
    g.pop("json_object", None)  # the items parsed: the last reference to them once the view has returned
    if body is None or body.size < GIVE_BACK_FROM:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator gives memory back its own way
        log.debug("malloc_trim is not available: freed memory stays with the allocator")
        return None


class _Capped:
    """The request's body stream, refused once more than ``limit`` bytes came (a chunked body announces none)."""

    def __init__(self, stream: IO[bytes], limit: int):
        self._stream, self.limit, self.size = stream, limit, 0

    def read(self, size: int = CHUNK) -> bytes:
        piece = self._stream.read(size)
        self.size += len(piece)
        if self.size > self.limit:
            raise _too_large(self.limit)
        return piece


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the batch's body is over MAX_BATCH_BYTES ({_size(limit)}): send its items in several "
                           "batches, or smaller inputs (BFL takes image URLs instead of base64 too)")


def _size(size: int) -> str:
    return f"{size / 2**20:g} MiB" if size >= 2**20 else f"{size:,} bytes"


def _from_ndjson(body: _Capped) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in request.args.items(multi=True):
        refuse_unknown([name], BATCH_FIELDS[:1] + BATCH_FIELDS[2:], where="POST /v1/batches (NDJSON)",
                       kind="query parameter")
        if name in data:
            raise InvalidRequest(f"give '{name}' once")
        data[name] = _query_json(name, value) if name in ("metadata", "notify_events") else value
    items = []
    for number, line in json_stream.ndjson_lines(body.read):
        line = line.removesuffix(b"\r")
        if not line.strip():
            continue
        try:
            items.append(json_body.loads(str(line, "utf-8")))
        except UnicodeDecodeError:
            raise InvalidRequest(f"line {number} of the NDJSON body is not UTF-8") from None
        except InvalidRequest as exc:
            raise InvalidRequest(f"line {number} of the NDJSON body is not a JSON object: {exc.message}") from None
    data["items"] = items
    return data


def _query_json(name: str, value: str) -> Any:
    """A query parameter of an NDJSON batch that holds JSON (``metadata``, ``notify_events``)."""
    try:
        return json_body.loads(value)
    except InvalidRequest as exc:
        raise InvalidRequest(f"the query parameter '{name}' must be JSON: {exc.message}") from None
