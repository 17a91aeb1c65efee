"""The dashboard's signed-in state: a Flask session cookie signed with SECRET_KEY (opened by ``context``'s
``SessionInterface``).

The cookie never holds the API token, only a keyed fingerprint of it, so removing a token from API_TOKENS signs out
every session opened with it. Each session carries its own CSRF token, which every dashboard form sends back, and its
own id: signing out records that id in Redis (``store.signed_out``) for as long as a cookie may live, so every copy of
the cookie stops working at once, on every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import wraps

from flask import current_app, g, request, session

from .auth import is_admin_token
from .context import services
from .errors import error_response

_FINGERPRINT_SALT = b"fluxhook.dashboard-token"


def _fingerprint(token: str) -> str:
    key = hashlib.sha256(_FINGERPRINT_SALT + services().config.secret_key.encode()).digest()
    return hmac.new(key, token.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]


def token_accepted(token: str) -> bool:
    """Whether ``token`` (as typed into the sign-in form: spaces at its ends dropped) is one of API_TOKENS."""
    return is_admin_token(services().config.api_tokens, token.strip())


def signed_in() -> bool:
    """Whether this request's session was opened with a token API_TOKENS still lists, and not signed out."""
    fingerprint, session_id = session.get("token"), session.get("sid")
    if session.get("signed_in") is not True or not isinstance(fingerprint, str) or not isinstance(session_id, str):
        return False
    if not sum(hmac.compare_digest(fingerprint, _fingerprint(t)) for t in services().config.api_tokens):
        return False
    # Asked of Redis once per request (a page asks several times).
    if "session_ended" not in g:
        g.session_ended = services().store.signed_out.ended(session_id)
    return not g.session_ended


def sign_in(token: str) -> None:
    """Open a fresh session for an accepted ``token`` (a new CSRF token too: nothing carries over)."""
    session.clear()
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME without use
    session["signed_in"] = True
    session["token"] = _fingerprint(token.strip())
    session["sid"] = secrets.token_urlsafe(24)
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    """End this session on the server (every copy of its cookie), then clear this copy."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        services().store.signed_out.end(session_id, int(lifetime) + 1)
    g.session_ended = True
    session.clear()


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the sign-in form needs one before signing in)."""
    if not isinstance(session.get("csrf"), str):
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_valid(given: str | None) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def csrf_checked(refusal: str):
    """A form's view, refused 400 ``csrf_failed`` with ``refusal`` unless its form carries this session's CSRF token."""

    def checked(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not csrf_valid(request.form.get("csrf_token")):
                return error_response(400, "csrf_failed", refusal)
            return view(*args, **kwargs)

        return wrapper

    return checked
