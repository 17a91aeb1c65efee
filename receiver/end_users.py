"""The end user a request names: its ``end_user`` field, or the ``X-End-User`` header for a client that cannot
change BFL's body (``core.end_users``)."""

from __future__ import annotations

from typing import Any

from flask import request

from fluxhook.core.end_users import FIELD, HEADER, parse_end_user
from fluxhook.core.errors import InvalidRequest

# What joins the values of an X-End-User header sent more than once (``join_repeated``): a line feed, which no header
# value can hold (HTTP ends a header's line at it; gunicorn refuses one inside a value), so no client can send it.
# gunicorn itself joins a repeated header's values with ',', which a name may hold: two headers 'a' and 'b' would be
# taken for the one end user 'a,b'.
REPEATED = "\n"
_WIRE_NAME = HEADER.upper()


def join_repeated(headers: list[tuple[str, str]]) -> None:
    """Before the WSGI environ is made from a request's ``headers`` (gunicorn's list of (NAME, value), each header as
    sent; called by ``BufferingWorker.handle_request``): the values of an X-End-User header sent more than once are joined with
    ``REPEATED`` into one header, so the app refuses the request (``requested_end_user``) instead of reading them as
    one name."""
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
        raise InvalidRequest(f"the {HEADER} header was sent {header.count(REPEATED) + 1} times: send it once, naming "
                             f"one end user (nothing was created)")
    return parse_end_user(_utf8(header), HEADER)


def requested_end_user(body_value: Any = None) -> str | None:
    """The end user of this request: the body's ``end_user`` (``body_value``) or the header; both, they must agree
    (400 otherwise, as for a malformed one); None when neither names one."""
    from_body = parse_end_user(body_value, FIELD)
    from_header = header_end_user(request.headers.get(HEADER))
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
