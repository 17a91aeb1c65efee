"""The end user a request names: its ``end_user`` field, or the ``X-End-User`` header for a client that cannot
change BFL's body (``core.end_users``)."""

from __future__ import annotations

from typing import Any

from flask import request

from fluxhook.core.end_users import FIELD, HEADER, parse_end_user
from fluxhook.core.errors import InvalidRequest


def requested_end_user(body_value: Any = None) -> str | None:
    """The end user of this request: the body's ``end_user`` (``body_value``) or the header; both, they must agree
    (400 otherwise, as for a malformed one); None when neither names one."""
    from_body = parse_end_user(body_value, FIELD)
    header = request.headers.get(HEADER)
    from_header = parse_end_user(_utf8(header), HEADER) if header is not None else None
    if from_body is not None and from_header is not None and from_body != from_header:
        raise InvalidRequest(f"the body's '{FIELD}' and the {HEADER} header name two end users; send one")
    return from_body if from_body is not None else from_header


def _utf8(header: str) -> str:
    """The header's value read as UTF-8, as the JSON body's ``end_user`` is: the server hands a header's bytes over
    one character a byte (latin-1), which would make an app's 'jürgen' in the header another end user than the same
    name in a body, with limits of its own. A 400 for bytes that are not UTF-8."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidRequest(f"the {HEADER} header must be UTF-8: send the end user's name as the UTF-8 bytes of "
                             f"its characters, as the body's '{FIELD}' is") from None
