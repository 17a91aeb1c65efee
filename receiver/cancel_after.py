"""``Cancel-After`` on the submitting routes (``POST /v1/jobs``, the drop-in's ``POST /v1/{model}``): read with the
request, so a bad value answers 400 before anything is created or counted (``core.deadlines`` parses it)."""

from __future__ import annotations

from flask import request

from fluxhook.core.deadlines import HEADER, parse_cancel_after


def requested_cancel_after() -> int | None:
    """The seconds the request's ``Cancel-After`` names (None: it sends none); ``InvalidCancelAfter`` (400) for a
    bad value."""
    value = request.headers.get(HEADER)
    return None if value is None else parse_cancel_after(value)
