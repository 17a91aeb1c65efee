"""The body of ``POST /v1/batches`` (docs/api.md, docs/operating.md "What a key holds is bounded"), at most
``MAX_BATCH_BYTES``, parsed as it is read.

The web worker has the body whole before the app runs (in a temporary file past a few MiB:
``receiver/buffering_worker.py``). Read whole again, decoded and parsed, or its items kept as Python values, a large
body would cost the web process several times its size. Here neither the body nor its items are held: NDJSON is read
a line at a time, JSON an item at a time (``core/json_body.py``), and each item goes to the batch's ``ItemSpool``
(``core/batch_items.py``) as it is parsed, its shape checked; what stays is the other fields, counts, the first bad
items' problems and, with an ``Idempotency-Key``, a running digest of the items. Once its request ends the spool is
deleted and the memory its items passed through handed back to the system (glibc otherwise keeps it: a web process that
once took four large batches would hold their size for good).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import logging
from functools import cache
from typing import IO, Any, Callable

from flask import g, request

from fluxhook.core import json_body
from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import FluxhookError, InvalidRequest, PayloadTooLarge
from fluxhook.core.json_body import refuse_unknown

from .errors import byte_size
from .idempotency_keys import HEADER, Parsed
from .request_input import require_json

log = logging.getLogger("fluxhook.batches")

NDJSON = "application/x-ndjson"
BATCHES_PATH = "/v1/batches"
# The fields of POST /v1/batches (with NDJSON, its query parameters but ``items``).
BATCH_FIELDS = ("model", "items", "metadata", "notify_url", "notify_events", "end_user")
# A body at least this large gives its memory back once its request has ended: a smaller one's is reused as it is.
GIVE_BACK_FROM = 4 * 2**20
# The longest Content-Length the web worker frames a body by (18 digits): a longer one is no length of a body read here.
MOST_LENGTH = 10**18 - 1
# What is wrong with the shape of one item, each problem as (its field, what to do); empty for a good one.
Shape = Callable[[Any], list[tuple[str, str]]]


class BatchBody:
    """A batch's body as read: its fields but its items (with NDJSON, its query parameters), and its items, each
    checked by ``shape`` and spooled as it was parsed; ``listed`` once the body gave its items as an array (or
    lines)."""

    def __init__(self, shape: Shape, keyed: bool):
        self.fields: dict[str, Any] = {}
        self.items = ItemSpool()
        self.listed = False
        self.size = 0
        self._shape = shape
        # Only a request with an Idempotency-Key is compared with another: only its items are hashed.
        self._digest = hashlib.sha256() if keyed else None

    def add(self, item: Any) -> None:
        """The next item as parsed: hashed for the Idempotency-Key, its shape checked, then spooled (a bad one's
        place holds its problems, never checked nor made)."""
        if self._digest is not None:
            # Its keys sorted: the same item sent with its keys in another order or spaced otherwise is the same.
            # A line each, so that items never run together ([1, 2] is not [12]).
            self._digest.update(json.dumps(item, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        problems = self._shape(item)
        if problems:
            self.items.refuse(problems)
        else:
            self.items.add(BatchItem(item["input"], item.get("metadata") or {}, item.get("end_user")))

    def fingerprinted(self) -> Parsed:
        """The batch as an ``Idempotency-Key``'s fingerprint takes it: its fields, with its items' digest for them
        (the same batch, whether sent as JSON or NDJSON, has the same)."""
        if self._digest is None or not self.listed:
            return Parsed(self.fields)
        return Parsed({**self.fields, "items": "sha256:" + self._digest.hexdigest()})


def read(limit: int, shape: Shape) -> BatchBody:
    """The body (with NDJSON: its items, and the rest from the query), parsed as it is read, each item checked by
    ``shape`` and spooled as it comes; ``PayloadTooLarge`` (413) past ``limit`` bytes, before it is read when its
    length is announced. The batch's body stays this request's (``current``) until it ends."""
    size = request.content_length
    if size is not None and size > limit:
        discard()  # under the Procfile's web, never received (``head_refusals``): nothing to read
        raise too_large(limit)
    body = _Capped(request.stream, limit)
    batch = g.batch_body = BatchBody(shape, keyed=request.headers.get(HEADER) is not None)
    try:
        if request.mimetype == NDJSON:
            _from_ndjson(body, batch)
        else:
            require_json()
            stream = json_body.Stream("items", batch.add)
            batch.fields = json_body.load_object(body.read, stream=stream)
            batch.listed = batch.fields.get("items") is stream
            if batch.listed:
                del batch.fields["items"]
    except FluxhookError:  # too large, or refused before its end: the rest is read, not parsed
        discard()
        raise
    finally:
        batch.size = body.size
    return batch


def current() -> BatchBody:
    """This request's batch body, as ``read`` read it."""
    return g.batch_body


def fingerprinted() -> Parsed:
    """This request's batch as an ``Idempotency-Key``'s fingerprint takes it."""
    return current().fingerprinted()


def discard() -> None:
    """Read the rest of the body and drop it, before a refusal that did not need it: the web worker keeps a
    connection for the next request only once the last one's body was read to the end, and would otherwise cut it under
    a client told to keep it alive."""
    while request.stream.read(json_body.PIECE):
        pass


def give_back_memory() -> None:
    """The batch's spool deleted, and the memory a large body's items passed through given back to the system once
    its request has ended (glibc's ``malloc_trim``; elsewhere the allocator's own way stands)."""
    body = g.pop("batch_body", None)
    if body is None:
        return
    body.items.close()
    if body.size < GIVE_BACK_FROM:
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
            raise too_large(self.limit)
        return piece


def too_large(limit: int) -> PayloadTooLarge:
    """The refusal of a batch's body over ``limit`` (MAX_BATCH_BYTES)."""
    return PayloadTooLarge(f"the batch's body is over MAX_BATCH_BYTES ({byte_size(limit)}): send its items in several "
                           "batches, or smaller inputs (BFL takes image URLs instead of base64 too)")


def _from_ndjson(body: _Capped, batch: BatchBody) -> None:
    for name, value in request.args.items(multi=True):
        refuse_unknown([name], BATCH_FIELDS[:1] + BATCH_FIELDS[2:], where="POST /v1/batches (NDJSON)",
                       kind="query parameter")
        if name in batch.fields:
            raise InvalidRequest(f"give '{name}' once")
        batch.fields[name] = _query_json(name, value) if name in ("metadata", "notify_events") else value
    batch.listed = True
    for number, line in json_body.ndjson_lines(body.read):
        line = line.removesuffix(b"\r")
        if not line.strip():
            continue
        try:
            item = json_body.loads(str(line, "utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest(f"line {number} of the NDJSON body is not UTF-8") from None
        except InvalidRequest as exc:
            raise InvalidRequest(f"line {number} of the NDJSON body is not a JSON object: {exc.message}") from None
        batch.add(item)


def _query_json(name: str, value: str) -> Any:
    """A query parameter of an NDJSON batch that holds JSON (``metadata``, ``notify_events``)."""
    try:
        return json_body.loads(value)
    except InvalidRequest as exc:
        raise InvalidRequest(f"the query parameter '{name}' must be JSON: {exc.message}") from None
