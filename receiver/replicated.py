"""``REDIS_MIN_REPLICAS``: a request that changed something is answered only once Redis's replicas have it."""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app, g, request

from fluxhook.core.errors import NotReplicated
from fluxhook.store.replication import Replication

log = logging.getLogger("fluxhook.replication")

# What marks a view whose answer waits for the replicas (``replicated``).
_MARK = "replicated"


def replicated(view):
    """Hold the view's successful answer until the replicas confirm what it wrote (a replayed answer too). Only marks
    the view: with replicas required, ``init_app``'s hooks hold its answer; without, nothing runs for it."""
    setattr(view, _MARK, True)
    return view


def in_error_shape(exc: Exception):
    """``exc`` as the error answer its route gives (BFL's shape on the BFL-compatible routes), for a failure
    after the view answered, where Flask's error handlers no longer apply."""
    return current_app.make_response(current_app.handle_user_exception(exc))


def init_app(app: Flask, replication: Replication) -> None:
    """Hold the answers of replicated views when ``REDIS_MIN_REPLICAS`` asks for replicas; with none asked, nothing is
    installed. Registered before ``idempotency``: Flask runs the later-registered ``after_request`` first, and the
    answer kept for an ``Idempotency-Key`` is among the writes to confirm."""
    if not replication.required:
        return

    @app.before_request
    def note_primary():
        # Before any of the request's writes: the primary that takes them (see fluxhook.store.replication).
        if getattr(app.view_functions.get(request.endpoint or ""), _MARK, False):
            g.replication_primary = replication.primary()

    @app.after_request
    def confirm(response):
        primary = g.pop("replication_primary", None)
        if primary is None or response.status_code >= 500:
            return response
        try:
            if response.status_code >= 400:
                # Nothing to acknowledge, but a refusal read from a new primary may be wrong (the job it
                # created a moment before on the old one missing): the answer stands only on the same primary.
                replication.check_primary(primary)
            else:
                replication.confirm(primary)
        except (NotReplicated, redis.RedisError) as exc:
            log.warning("answer withheld: not confirmed on Redis's replicas", extra={"error": type(exc).__name__})
            return in_error_shape(exc)
        return response
