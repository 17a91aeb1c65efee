"""What a request's headers ask of its handling: ``Prefer: wait=N`` and ``Prefer: handling=strict`` (RFC 7240), read
the lenient way the RFC asks for, and ``Cancel-After`` on the submitting routes (``POST /v1/jobs``, the drop-in's
``POST /v1/{model}``), read with the request, so a bad value answers 400 before anything is created or counted
(``core.job.parse_cancel_after`` parses it)."""

from __future__ import annotations

from flask import request

from fluxhook.core.job import CANCEL_AFTER, parse_cancel_after

MIN_WAIT, MAX_WAIT = 1, 60


def requested_wait(header: str | None) -> int | None:
    """Seconds asked for by a ``Prefer`` header, clamped to 1..60; None if it asks for no wait.

    Preferences a server does not understand are ignored, never an error: so are malformed ones.
    """
    for preference in (header or "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        try:
            seconds = float(value)
        except ValueError:
            return None
        if seconds != seconds:  # NaN
            return None
        return int(max(MIN_WAIT, min(MAX_WAIT, seconds)))
    return None


def requested_strict(header: str | None) -> bool:
    """Whether a ``Prefer`` header asks for strict handling of what the request sends (``handling=strict``; any
    other value, or none, asks for nothing: a preference is never an error)."""
    for preference in (header or "").split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "handling":
            return value.strip().strip('"').lower() == "strict"
    return False


def requested_cancel_after() -> int | None:
    """The seconds the request's ``Cancel-After`` names (None: it sends none); ``InvalidCancelAfter`` (400) for a
    bad value."""
    value = request.headers.get(CANCEL_AFTER)
    return None if value is None else parse_cancel_after(value)
