"""Authentication for ``/v1``: ``Authorization: Bearer <token>``, or BFL's own ``x-key: <token>`` header."""

from __future__ import annotations

import hmac

from flask import request

from fluxhook.errors import Unauthorized

from .context import services

# BFL's clients send their key in this header; accepted wherever a bearer token is, so they work unchanged.
KEY_HEADER = "x-key"


def presented_token() -> str | None:
    """The token the caller presents: its ``x-key``, else its bearer token; None when it sends neither.

    An ``x-key`` sent (even empty) is the one judged: a wrong key is never saved by another header.
    """
    if KEY_HEADER in request.headers:
        return request.headers[KEY_HEADER].strip() or None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_token_valid() -> bool:
    """Whether the request presents a token from API_TOKENS (as a bearer token or an ``x-key``)."""
    token = presented_token()
    if token is None:
        return False
    given = token.encode("utf-8", "surrogateescape")
    # Compare against every token so the time taken does not tell which one nearly matched.
    return sum(hmac.compare_digest(given, t.encode()) for t in services().config.api_tokens) > 0


def require_bearer() -> None:
    """Refuse the request with 401 unless it presents a valid token."""
    if not bearer_token_valid():
        raise Unauthorized("send 'Authorization: Bearer <token>' (or 'x-key: <token>') with a token from API_TOKENS")
