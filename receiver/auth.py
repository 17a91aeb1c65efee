"""Authentication for ``/v1``: an admin token from API_TOKENS or an app key, as a bearer token or as BFL's own
``x-key`` header."""

from __future__ import annotations

import hmac
from typing import Callable, Iterable
from urllib.parse import unquote

from flask import Flask, current_app, g, request
from redis.exceptions import RedisError

from fluxhook.core.errors import FluxhookError, Forbidden, Unauthorized
from fluxhook.lifecycle.steps.callers import ADMIN, Caller, KeyResolver

from .context import services

_REFUSED = ("send 'Authorization: Bearer <token>' (or 'x-key: <token>') with a token from API_TOKENS "
            "or an app key")
# Told apart from no token at all: a caller who sent one must check it, not learn how to send one.
_UNRECOGNISED = ("the token sent was not recognised: it is neither one of API_TOKENS nor an app key's; check that "
                 "it is this fluxhook's and was copied whole (make run prints its dev token when it starts), or ask "
                 "an admin for an app key")
# BFL's clients send their key in this header; accepted wherever a bearer token is, so they work unchanged.
KEY_HEADER = "x-key"
# Every route under it that takes a body wants a token.
API_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def init_app(app: Flask) -> None:
    """Give the app its resolver of app keys (with its short cache)."""
    app.extensions["fluxhook.keys"] = KeyResolver(app.extensions["fluxhook"].store.app_keys)


def token_in(header: Callable[[str], str | None]) -> str | None:
    """The token a request presents (``header``: its value of a header, None if absent): its ``x-key``, judged even
    when empty (a wrong key is never saved by another header), else its bearer token; None when it sends neither."""
    key = header(KEY_HEADER)
    if key is not None:
        return key.strip() or None
    scheme, _, token = (header("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def presented_token() -> str | None:
    return token_in(request.headers.get)


def is_admin_token(api_tokens: Iterable[str], token: str) -> bool:
    """Whether ``token`` is one of API_TOKENS (never when empty): the one test of an admin token, the dashboard's
    sign-in included."""
    given = token.encode("utf-8", "surrogateescape")
    # Compare against every token so the time taken does not tell which one nearly matched.
    return bool(given) and sum(hmac.compare_digest(given, t.encode()) for t in api_tokens) > 0


def require_metrics_reader() -> None:
    """401 unless the request carries an admin token or ``METRICS_TOKEN``: /metrics names every app key and what
    each spends. ``METRICS_TOKEN`` opens /metrics and nothing else (no other check knows it)."""
    config = services().config
    token = presented_token()
    if token is None or not (is_admin_token(config.api_tokens, token) or _is_metrics_token(config.metrics_token, token)):
        raise Unauthorized("send 'Authorization: Bearer <token>' with METRICS_TOKEN or a token from API_TOKENS")


def _is_metrics_token(metrics_token: str | None, token: str) -> bool:
    return metrics_token is not None and hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                                                             metrics_token.encode())


def unauthorized_before_body(api_tokens: Iterable[str], keys: KeyResolver, method: str, target: str,
                             header: Callable[[str], str | None]) -> Unauthorized | None:
    """The 401 of a request that sends a body to ``/v1``, whatever its body: it presents no token, or one that is
    neither an admin token nor a usable app key (no key's, revoked or expired); None when its token may be used.

    Asked before the body is received (``receiver/head_refusals.py``), so no body of a client without credentials is.
    A key-shaped token costs the one Redis read of its record that judging it after its body would (none when the
    resolver holds it: ``KeyResolver.cached``). With Redis unreachable the body is received, and the app answers.
    """
    if method not in BODY_METHODS or not unquote(target.partition("?")[0]).startswith(API_PREFIX):
        return None
    token = token_in(header)
    if token is None:
        return Unauthorized(_REFUSED)
    if is_admin_token(api_tokens, token):
        return None
    try:
        why = keys.refusal(token)
    except (RedisError, FluxhookError):
        return None
    return None if why is None else Unauthorized(why or _UNRECOGNISED)


def authenticate() -> Caller | None:
    """Who the request comes from (kept on ``g.caller``), or None if it presents no valid token; Unauthorized (with
    the reason) for an app key that is revoked or expired."""
    if "caller" in g:
        return g.caller
    token = presented_token()
    found = None
    if token is not None:
        if is_admin_token(services().config.api_tokens, token):
            found = ADMIN
        else:
            found = current_app.extensions["fluxhook.keys"].caller(token)
            if found is not None and found.key is not None:
                # Its next requests wait for a work permit in its key's own lane (receiver/bulkheads.py).
                current_app.extensions["fluxhook.lanes"].remember(token, found.key.id, found.key.weight)
    g.caller = found
    return found


def require_bearer() -> Caller:
    """The caller; 401 unless the request carries a valid admin token or app key."""
    found = authenticate()
    if found is None:
        raise Unauthorized(_REFUSED if presented_token() is None else _UNRECOGNISED)
    return found


def require_admin() -> Caller:
    """The caller, who must hold an admin token (401 without a token, 403 with an app key)."""
    found = require_bearer()
    if not found.admin:
        raise Forbidden("only an admin token (from API_TOKENS) may do this; app keys may not")
    return found
