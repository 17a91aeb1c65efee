"""What a request asks, read once: its JSON body, what its headers ask of its handling, and the end user it names.

- The JSON body, parsed once for both the Idempotency-Key fingerprint and the view, at most twice its size held at a time
  (a submission's may be hundreds of MB of base64 images): read into one buffer of its announced length, decoded to
  text (the buffer dropped), then parsed (the text dropped).
- ``Prefer: wait=N`` (its answer's ``Preference-Applied``) and ``Prefer: handling=strict`` (RFC 7240), read leniently as the
  RFC asks, and ``Cancel-After`` on the submitting routes (``POST /v1/jobs``, the drop-in's ``POST /v1/{model}``), read with
  the request, so a bad value answers 400 before anything is created or counted (``core.job.parse_cancel_after`` parses it).
- The end user: the body's ``end_user`` field, or the ``X-End-User`` header for a client that cannot change BFL's
  body (``core.end_users``).
"""

from __future__ import annotations

import io
from typing import Any, cast

from flask import Response, g, request

from fluxhook.core import json_body
from fluxhook.core.chunks import CHUNK
from fluxhook.core.end_users import FIELD, parse_end_user
from fluxhook.core.end_users import HEADER as END_USER_HEADER
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.holds import PREFER_WAIT_LONGEST
from fluxhook.core.job import CANCEL_AFTER as CANCEL_AFTER_HEADER
from fluxhook.core.job import parse_cancel_after
from fluxhook.core.json_body import NOT_AN_OBJECT

# --- the JSON body ---

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


# --- what the headers ask of its handling ---

MIN_WAIT, MAX_WAIT = 1, PREFER_WAIT_LONGEST


def requested_wait(header: str | None) -> int | None:
    """Seconds asked for by a ``Prefer`` header, clamped to 1..60; None if it asks for no wait or a malformed one (a
    preference a server does not understand is ignored, never an error)."""
    try:
        seconds = float(_preference(header, "wait") or "")
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    return int(max(MIN_WAIT, min(MAX_WAIT, seconds)))


def preference_applied(response: Response, seconds: int | None) -> Response:
    """The answer, saying that it waited ``seconds`` as the request preferred (unchanged if it did not wait)."""
    if seconds is not None:
        response.headers["Preference-Applied"] = f"wait={seconds}"
        response.vary.add("Prefer")
    return response


def requested_strict(header: str | None) -> bool:
    """Whether a ``Prefer`` header asks for strict handling of what the request sends (``handling=strict``; any
    other value, or none, asks for nothing: a preference is never an error)."""
    return (_preference(header, "handling") or "").lower() == "strict"


def _preference(header: str | None, wanted: str) -> str | None:
    """The value of a ``Prefer`` header's first ``wanted`` preference, unquoted; None when it has none."""
    for preference in (header or "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == wanted:
            return value.strip().strip('"')
    return None


def requested_cancel_after() -> int | None:
    """The seconds the request's ``Cancel-After`` names (None: it sends none); ``InvalidCancelAfter`` (400) for a
    bad value."""
    value = request.headers.get(CANCEL_AFTER_HEADER)
    return None if value is None else parse_cancel_after(value)


# --- the end user ---

# What joins the values of an X-End-User header sent more than once (``join_repeated``): a line feed, which no header
# value can hold, not gunicorn's ',', which a name may hold (headers 'a' and 'b' would read as one end user 'a,b').
REPEATED = "\n"
_WIRE_NAME = END_USER_HEADER.upper()


def join_repeated(headers: list[tuple[str, str]]) -> None:
    """The values of an X-End-User header sent more than once joined with ``REPEATED`` into one header (``headers``:
    gunicorn's list of (NAME, value), each header as sent, before the environ is made from it), so the app refuses the
    request (``requested_end_user``) instead of reading them as one name."""
    values = [value for name, value in headers if name == _WIRE_NAME]
    if len(values) > 1:
        headers[:] = [(name, value) for name, value in headers if name != _WIRE_NAME]
        headers.append((_WIRE_NAME, REPEATED.join(values)))


def header_end_user(header: str | None) -> str | None:
    """The end user the X-End-User header names (None: it was not sent); a 400 naming the header for a header sent
    more than once, bytes that are not UTF-8, or anything but a good name."""
    if header is None:
        return None
    if REPEATED in header:
        raise InvalidRequest(f"the {END_USER_HEADER} header was sent {header.count(REPEATED) + 1} times: send it "
                             f"once, naming one end user (nothing was created)")
    return parse_end_user(_utf8(header), END_USER_HEADER)


def requested_end_user(body_value: Any) -> str | None:
    """The end user of this request: the body's ``end_user`` (``body_value``) or the header; both, they must agree
    (400 otherwise, as for a malformed one); None when neither names one."""
    if body_value is None:
        return header_end_user(request.headers.get(END_USER_HEADER))
    from_body = parse_end_user(body_value, FIELD)
    from_header = header_end_user(request.headers.get(END_USER_HEADER))
    if from_header is not None and from_body != from_header:
        raise InvalidRequest(f"the body's '{FIELD}' and the {END_USER_HEADER} header name two end users; send one")
    return from_body


def _utf8(header: str) -> str:
    """The header's value read as UTF-8, as the JSON body's ``end_user`` is: the server hands a header's bytes over
    one character a byte (latin-1), which would make an app's 'jürgen' in the header another end user than the same
    name in a body, with limits of its own. A 400 for bytes that are not UTF-8."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidRequest(f"the {END_USER_HEADER} header must be UTF-8: send the end user's name as the UTF-8 "
                             f"bytes of its characters, as the body's '{FIELD}' is") from None
