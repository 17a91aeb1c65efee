"""Whose leases a caller's streams and answers count among (``MAX_STREAMS_PER_CALLER``, ``MAX_ANSWERS_PER_CALLER``):
one rule for both."""

from __future__ import annotations

from flask import session

from fluxhook.lifecycle.steps.callers import Caller, digest

from .auth import presented_token


def of_caller(caller: Caller) -> str:
    """An app key's id, or the admin token's digest (never the token)."""
    return caller.key_id or f"admin-{digest(presented_token() or '')[:24]}"


def of_session() -> str:
    """A dashboard session's: its admin token's, by the fingerprint the session keeps."""
    return f"session-{str(session.get('token', ''))[:24]}"
