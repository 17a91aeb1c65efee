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
    from_header = parse_end_user(header, HEADER) if header is not None else None
    if from_body is not None and from_header is not None and from_body != from_header:
        raise InvalidRequest(f"the body's '{FIELD}' and the {HEADER} header name two end users; send one")
    return from_body if from_body is not None else from_header
