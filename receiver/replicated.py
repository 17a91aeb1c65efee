"""``REDIS_MIN_REPLICAS``: a request that changed something is answered only once Redis's replicas have it."""

from __future__ import annotations

import logging
from functools import wraps

import redis
from flask import Flask, current_app, g

from fluxhook.core.errors import NotReplicated
from fluxhook.store.replication import Replication

from .context import services

log = logging.getLogger("fluxhook.replication")


def replicated(view):
    """Hold the view's successful answer until the replicas confirm what it wrote (a replayed answer too). The primary
    is noted as the view starts, after its blueprint's checks: a request refused before it (no key, a bad one) wrote and
    read nothing, and costs Redis nothing here."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        replication = services().store.replication
        if replication.required:
            # Before the view's first write: the primary that takes its writes (see fluxhook.store.replication).
            g.replication_primary = replication.primary()
        return view(*args, **kwargs)

    return wrapper


def in_error_shape(exc: Exception):
    """``exc`` as the error answer its route gives (BFL's shape on the BFL-compatible routes), for a failure
    after the view answered, where Flask's error handlers no longer apply."""
    return current_app.make_response(current_app.handle_user_exception(exc))


def init_app(app: Flask, replication: Replication) -> None:
    """Hold the answers of replicated views when ``REDIS_MIN_REPLICAS`` asks for replicas; with none asked, no hook is
    installed. Registered before ``idempotency``: Flask runs the later-registered ``after_request`` first, and the
    answer kept for an ``Idempotency-Key`` is among the writes to confirm."""
    if not replication.required:
        return

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
