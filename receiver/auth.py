"""Bearer-token authentication for ``/v1``."""

from __future__ import annotations

import hmac

from flask import request

from fluxhook.errors import Unauthorized

from .context import services


def bearer_token_valid() -> bool:
    """Whether the request carries ``Authorization: Bearer <token>`` with a token from API_TOKENS."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    given = token.strip().encode("utf-8", "surrogateescape")
    # Compare against every token so the time taken does not tell which one nearly matched.
    return sum(hmac.compare_digest(given, t.encode()) for t in services().config.api_tokens) > 0


def require_bearer() -> None:
    """Refuse the request with 401 unless it carries a valid bearer token."""
    if not bearer_token_valid():
        raise Unauthorized("send 'Authorization: Bearer <token>' with a token from API_TOKENS")
