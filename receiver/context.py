"""What a request has beside its view: the process's services, an id, its one log line (naming the route pattern,
never the raw path: it holds tokens), and its session, opened only when the request carries the dashboard's cookie."""

from __future__ import annotations

import logging
import random
import time

from flask import Flask, current_app, g, request
from flask.sessions import SecureCookieSessionInterface

from fluxhook.services import Services

log = logging.getLogger("fluxhook.access")


def services() -> Services:
    """The services ``create_app`` was built with."""
    return current_app.extensions["fluxhook"]


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built only for requests that carry the cookie."""

    def open_session(self, app, request):
        # Callbacks and API calls never carry one, and building the signer is a noticeable share of
        # a callback's CPU time (README, "Scaling, and the settings chosen").
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Give every request an id and log it when it ends."""

    @app.before_request
    def start():
        g.started = time.perf_counter()
        # An id for finding the request's lines, not a secret: no system call for randomness needed.
        incoming = request.headers.get("X-Request-Id", "")
        valid = 0 < len(incoming) <= 64 and incoming.isprintable()
        g.request_id = incoming if valid else f"{random.getrandbits(128):032x}"

    @app.after_request
    def finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else "(unmatched)",
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                # Only a request about a job names one: no empty field on the others.
                **({"job_id": g.job_id} if g.get("job_id") else {}),
                **g.get("log_detail", {}),
            },
        )
        return response
