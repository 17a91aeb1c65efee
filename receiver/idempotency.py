"""``Idempotency-Key`` on the submitting endpoints: the first answer is replayed, not acted on again."""

from __future__ import annotations

import logging
from functools import wraps

import redis
from flask import Flask, Response, g, request

from fluxhook import idempotency
from fluxhook.bfl.client import CALL_BOUND
from fluxhook.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from fluxhook.store.idempotency import DONE, IN_USE, REUSED
from fluxhook.waiting import MAX_WAIT

from .auth import presented_token
from .context import services

log = logging.getLogger("fluxhook.idempotency")

REPLAYED = "Idempotent-Replayed"
# The claim outlasts the longest a first request can take (a BFL call, then a Prefer: wait), so a
# repeat never acts while the first may still; a process that dies with it frees the key after it.
CLAIM_LEASE = CALL_BOUND + MAX_WAIT + 30


def idempotent(view):
    """Answer a repeated request (same bearer token and key) with the first request's answer."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(idempotency.HEADER)
        if key is None:
            return view(*args, **kwargs)
        # The blueprint has checked the token already; only its digest is used from here on.
        token = presented_token() or ""
        claim = idempotency.claim(token, key, request.method, request.path, request.get_data())
        first = services().store.idempotency.begin(claim, CLAIM_LEASE)
        if first.state == DONE:
            replay = Response(first.body, status=first.status, mimetype="application/json")
            replay.headers[REPLAYED] = "true"
            return replay
        if first.state == REUSED:
            raise IdempotencyKeyReused(f"this {idempotency.HEADER} was first used with another request body "
                                       "or on another endpoint")
        if first.state == IN_USE:
            raise IdempotencyKeyInUse(f"the first request with this {idempotency.HEADER} is still being handled; "
                                      "retry shortly")
        g.idempotency_claim = (claim, first.ticket)
        return view(*args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    """Keep each claimed request's answer (errors included, but never a 5xx, which may be retried)."""

    @app.after_request
    def keep_answer(response):
        held = g.get("idempotency_claim")
        if held is not None:
            claim, ticket = held
            if response.status_code >= 500:
                services().store.idempotency.abandon(claim, ticket)
            elif not services().store.idempotency.finish(claim, ticket, response.status_code, response.get_data()):
                log.warning("idempotency claim lapsed before the answer: it is not kept")
            g.pop("idempotency_claim")
        return response

    @app.teardown_request
    def free_key(exc):
        # No answer was kept (this process failed, or Redis did while keeping it): the client may retry.
        held = g.pop("idempotency_claim", None)
        if held is not None:
            try:
                services().store.idempotency.abandon(*held)
            except redis.RedisError as error:
                log.warning("idempotency key not freed; it is free once its claim lapses",
                            extra={"error": type(error).__name__})
