"""Every error leaves as ``{"error": {"code", "message"}}``, Flask's own included."""

from __future__ import annotations

import json
import logging
import math
import re
from http import HTTPStatus

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from fluxhook.core.errors import EndUserBudgetExceeded, FluxhookError, InvalidItems, RangeNotSatisfiable, RateLimited

from .bulkheads import remember_refusal

log = logging.getLogger("fluxhook.web")


def error_response(status: int, code: str, message: str, **more):
    response = jsonify({"error": {"code": code, "message": message, **more}})
    response.status_code = status
    return response


def retry_after_header(seconds: float | None) -> str:
    """The ``Retry-After`` value for a wait of ``seconds``, for both APIs: whole seconds, rounded up so a client that
    waits as long as told never comes back early, at least 1 (None or 0: 1)."""
    return str(max(1, math.ceil(seconds or 0)))


def closing_answer(status: int, body: dict, retry_after: float | None = None, reason: str | None = None) -> bytes:
    """A whole HTTP/1.1 answer with the JSON ``body`` (and ``Retry-After`` when given) after which the connection
    closes: what is answered before a request's body is read, the body left unread."""
    data = json.dumps(body).encode()
    retry = f"Retry-After: {retry_after_header(retry_after)}\r\n" if retry_after is not None else ""
    head = (f"HTTP/1.1 {status} {reason or _phrase(status)}\r\nConnection: close\r\n{retry}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    return head.encode("latin-1") + data


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def byte_size(size: int) -> str:
    return f"{size / 2**20:g} MiB" if size >= 2**20 else f"{size:,} bytes"


def _advice(exc: HTTPException) -> str | None:
    """Werkzeug's stock sentences, said as what to do; None keeps Werkzeug's."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        room = f" of {byte_size(limit)}" if limit else ""
        return (f"the request body is over this endpoint's limit{room}: send less (for inputs, "
                "BFL takes image URLs instead of base64 too)")
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        allowed = ", ".join(m for m in exc.valid_methods if m not in ("HEAD", "OPTIONS"))
        return f"{request.method} is not allowed here; this path takes {allowed}"
    if isinstance(exc, NotFound) and request.url_rule is None:
        return "no such path: the API's paths are listed at /openapi.json"
    return None


def init_app(app: Flask) -> None:
    @app.errorhandler(FluxhookError)
    def fluxhook_error(exc: FluxhookError):
        # An InvalidItems names each bad item of a batch, with its field and what to do.
        items = {"items": exc.items} if isinstance(exc, InvalidItems) else {}
        response = error_response(exc.status, exc.code, exc.message, **items)
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.size}"
            response.headers["Accept-Ranges"] = "bytes"
        retry_after = getattr(exc, "retry_after", None)
        # An end user's 402 says when its day ends, so its app can tell that user when to come back.
        if (exc.status in (429, 503) or isinstance(exc, EndUserBudgetExceeded)) and retry_after:
            response.headers["Retry-After"] = retry_after_header(retry_after)
            if exc.code == RateLimited.code and request.method == "GET":
                remember_refusal(retry_after)  # a read over its key's rate: its next ones refused before a permit
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = error_response(exc.code or 500, _snake(exc.name), _advice(exc) or exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(redis.RedisError)
    def redis_error(exc: redis.RedisError):
        # A non-2xx makes BFL retry the callback later instead of losing it.
        log.error("redis unavailable", extra={"error": type(exc).__name__})
        response = error_response(503, "unavailable", "the job store is unavailable; retry later")
        response.headers["Retry-After"] = retry_after_header(1)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred")
