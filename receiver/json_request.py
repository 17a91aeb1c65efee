"""A request's JSON body, read and parsed once, holding as little of it at a time as parsing allows.

A submission's body may be hundreds of MB of base64 images. Read whole (werkzeug's ``get_data``),
decoded by ``json.loads``, parsed again by the view and copied into a fingerprint, it cost four times
its size. Here the body is read into one buffer of its announced length, decoded to text and the
buffer dropped, then parsed and the text dropped: never more than twice its size is held, and what
is kept is the parsed value, which both the Idempotency-Key fingerprint and the view use.
"""

from __future__ import annotations

import io
from typing import Any, cast

from flask import g, request

from fluxhook.core import json_body
from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.json_body import NOT_AN_OBJECT


def read_untyped_as_json() -> None:
    """From here on in this request, a body sent with no Content-Type at all is read as JSON, as BFL's own API
    does: code written for BFL that leaves the header out works unchanged on the BFL-compatible routes, whichever
    reads the body first (the view, or an ``Idempotency-Key``'s fingerprint)."""
    g.untyped_is_json = True


def json_object() -> dict[str, Any]:
    """The body as a JSON object, parsed on first use; InvalidRequest if it is not one (nor untyped, on a route
    that reads untyped bodies as JSON: ``read_untyped_as_json``), or if it gives a key twice in one object."""
    if "json_object" not in g:
        require_json()
        value = json_body.loads(_text())
        if not isinstance(value, dict):
            raise InvalidRequest(NOT_AN_OBJECT)
        g.json_object = value
    return g.json_object


def require_json() -> None:
    """InvalidRequest unless the body is sent as JSON (or untyped, on a route that reads untyped bodies as JSON)."""
    if not request.is_json and not (g.get("untyped_is_json", False) and not request.mimetype):
        sent = (request.mimetype or "none")[:60]
        raise InvalidRequest(f"send the body as JSON with the header 'Content-Type: application/json' "
                             f"(this request's Content-Type: {sent})")


def body_size() -> int:
    """How many bytes the body had (once read)."""
    return g.get("json_body_size", 0)


def _text() -> str:
    raw = _read()
    g.json_body_size = len(raw)
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not valid JSON: it is not UTF-8") from None


def _read() -> bytearray:
    stream = request.stream
    length = request.content_length
    if length is None:  # chunked: grows as it comes
        raw = bytearray()
        while piece := stream.read(CHUNK):
            raw += piece
        return raw
    raw = bytearray(length)
    view, got = memoryview(raw), 0
    # IO[bytes] names no readinto, which every body stream here has (io's, werkzeug's LimitedStream).
    limited = cast(io.RawIOBase, stream)
    while got < length:
        n = limited.readinto(view[got:got + CHUNK])  # a piece at a time: the server buffers no more
        if not n:
            break
        got += n
    view.release()
    del raw[got:]
    return raw
