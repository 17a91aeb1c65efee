"""Authentication for ``/v1``: an admin token from API_TOKENS or an app key, as a bearer token or as BFL's own
``x-key`` header."""

from __future__ import annotations

import hmac

from flask import Flask, current_app, g, request

from fluxhook.errors import Forbidden, Unauthorized
from fluxhook.lifecycle.app_keys import ADMIN, Caller, KeyResolver

from .context import services

_REFUSED = ("send 'Authorization: Bearer <token>' (or 'x-key: <token>') with a token from API_TOKENS "
            "or an app key")
# BFL's clients send their key in this header; accepted wherever a bearer token is, so they work unchanged.
KEY_HEADER = "x-key"


def init_app(app: Flask) -> None:
    """Give the app its resolver of app keys (with its short cache)."""
    app.extensions["fluxhook.keys"] = KeyResolver(app.extensions["fluxhook"].store.app_keys)


def presented_token() -> str | None:
    """The token the caller presents: its ``x-key``, else its bearer token; None when it sends neither.

    An ``x-key`` sent (even empty) is the one judged: a wrong key is never saved by another header.
    """
    if KEY_HEADER in request.headers:
        return request.headers[KEY_HEADER].strip() or None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
def authenticate() -> Caller | None:
    """Who the request comes from (kept on ``g.caller``), or None if it presents no valid token.

    Unauthorized (with the reason) for an app key that is revoked or expired.
    """
    if "caller" in g:
        return g.caller
    token = presented_token()
    found = None
    if token is not None:
        given = token.encode("utf-8", "surrogateescape")
        # Compare against every token so the time taken does not tell which one nearly matched.
        if sum(hmac.compare_digest(given, t.encode()) for t in services().config.api_tokens) > 0:
            found = ADMIN
        else:
            found = current_app.extensions["fluxhook.keys"].caller(token)
    g.caller = found
    return found


def bearer_token_valid() -> bool:
    """Whether the request carries a valid admin token or app key."""
    return authenticate() is not None


def require_bearer() -> Caller:
    """The caller; 401 unless the request carries a valid admin token or app key."""
    found = authenticate()
    if found is None:
        raise Unauthorized(_REFUSED)
    return found


def require_admin() -> Caller:
    """The caller, who must hold an admin token (401 without a token, 403 with an app key)."""
    found = require_bearer()
    if not found.admin:
        raise Forbidden("only an admin token (from API_TOKENS) may do this; app keys may not")
    return found
