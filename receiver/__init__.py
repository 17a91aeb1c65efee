"""fluxhook's web app: the HTTP API, BFL's callback receiver and health endpoints."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any, Callable, cast

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from fluxhook.core.config import Config
from fluxhook.services import Services, build_services

from . import (
    accounts,
    auth,
    batch_room,
    batches,
    bfl_compat,
    bulkheads,
    canceling,  # noqa: F401 (its route joins the jobs blueprint)
    catalog,
    context,
    dashboard,
    dashboard_batches,  # noqa: F401 (its routes join the dashboard's blueprint)
    dashboard_cancel,  # noqa: F401 (its route joins the dashboard's blueprint)
    dashboard_deliveries,  # noqa: F401 (its routes join the dashboard's blueprint)
    dashboard_keys,  # noqa: F401 (its routes join the dashboard's blueprint)
    deliveries,  # noqa: F401 (its routes join the jobs blueprint)
    errors,
    events,
    head_refusals,
    health,
    idempotency,
    jobs,
    keys,
    media,
    openapi,
    replicated,
    traces,
    usage,
    waiting,
    webhooks,
)
from .request_assembly import MAX_REQUEST_BYTES, BodyLimits

log = logging.getLogger("fluxhook.web")


class App(Flask):
    """Flask, with what the web worker reads off the app it loaded (receiver/buffering_worker.py)."""

    answer_before_body: Callable[[str, str, Any], bytes | None]
    refused_before_body: Callable[[str, str], bool]
    body_limits: BodyLimits


def create_app(config: Config | None = None, services: Services | None = None) -> Flask:
    """Build the Flask app; ``config`` defaults to the environment, read and validated once."""
    if services is None:
        services = build_services(config or Config.from_env())
    app = App(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    cast(DefaultJSONProvider, app.json).sort_keys = False  # Flask's own provider, whose sort_keys mypy cannot see
    # The dashboard's session cookie: signed with SECRET_KEY (still readable with the keys being
    # rotated out), never readable by scripts, not sent on cross-site requests, HTTPS-only when served so.
    app.secret_key = services.config.secret_key
    app.session_interface = context.SessionInterface()
    app.config.update(
        SECRET_KEY_FALLBACKS=list(services.config.previous_secret_keys),
        SESSION_COOKIE_NAME="fluxhook_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=services.config.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.extensions["fluxhook"] = services
    auth.init_app(app)
    errors.init_app(app)
    context.init_app(app)
    traces.init_app(app)  # after context's: a callback's span is current when its line is written
    # After both: a refused read is logged and traced as any answer.
    bulkheads.init_app(app, services.config.web_threads, services.config.api_tokens)
    replicated.init_app(app, services.store.replication)  # before idempotency: see replicated.init_app
    idempotency.init_app(app)
    waiting.init_app(app, waiting.Waiters(services.store.job_changes))
    events.init_app(app)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(webhooks.bp)
    # Asked by the web worker (receiver/buffering_worker.py) once a request's head is in.
    app.answer_before_body = partial(_answer_before_body, head_refusals.Judge(
        services, app.extensions["fluxhook.keys"], partial(batch_room.room_of, app)))
    app.refused_before_body = partial(webhooks.refused_before_body, services.config.secret_keys)
    # Read by the web worker once it loaded the app: what it may hold for bodies still arriving, and their pace.
    app.body_limits = BodyLimits(services.config.max_spool_bytes, services.config.min_body_rate)
    app.register_blueprint(usage.bp)
    app.register_blueprint(catalog.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(dashboard.bp)  # with dashboard_keys' and dashboard_deliveries' routes
    # After fluxhook's own routes: BFL's /v1/{model} takes only what none of them names.
    app.register_blueprint(bfl_compat.bp)
    # A web process's metrics and hourly counts are written every few seconds, not with each request.
    services.store.tallies.start()
    return app


def _answer_before_body(judge: head_refusals.Judge, method: str, target: str, header) -> bytes | None:
    """The answer to a request whose head is in, when it is refused whatever its body (``head_refusals``): the worker
    sends it and closes the connection, the body unread; None: its body is received."""
    refused = head_refusals.refusal_before_body(judge, method, target, header)
    if refused is None:
        return None
    log.info("request refused before its body", extra={"status": refused.error.status, "code": refused.error.code})
    return refused.answer()
