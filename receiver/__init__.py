"""fluxhook's web app: the HTTP API, BFL's callback receiver and health endpoints."""

from __future__ import annotations

from flask import Flask

from fluxhook.config import Config
from fluxhook.services import Services, build_services

from . import errors, health, jobs, openapi, requestlog, webhooks

# Large enough for BFL inputs carrying base64 images; the webhook endpoints cap themselves at 64 KiB.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def create_app(config: Config | None = None, services: Services | None = None) -> Flask:
    """Build the Flask app; ``config`` defaults to the environment, read and validated once."""
    if services is None:
        services = build_services(config or Config.from_env())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.sort_keys = False
    app.extensions["fluxhook"] = services
    errors.init_app(app)
    requestlog.init_app(app)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    return app
