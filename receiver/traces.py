"""Traces in the web process (``fluxhook.core.tracing``): Flask's instrumentation for the API's requests, and
a callback's span in its job's trace, current for the whole request (its log line included)."""

from __future__ import annotations

import os

from flask import Flask, g, request
from redis.exceptions import RedisError

from fluxhook.core import signing, tracing

from .context import services

# A callback on a job's own URL is traced as a step of that job (its token names the job), not as a request
# of its own; the URL's token never reaches a span.
_JOB_CALLBACKS = "/webhooks/bfl/."


def init_app(app: Flask) -> None:
    """Trace the app's requests if the environment asks for traces; with them off, nothing is installed."""
    if not tracing.setup("fluxhook-web"):
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    # The SDK's own exclusions (OTEL_PYTHON_FLASK_EXCLUDED_URLS) still apply beside this one.
    excluded = os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS") or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
    FlaskInstrumentor.instrument_app(app, excluded_urls=",".join(filter(None, [excluded, _JOB_CALLBACKS])))

    @app.before_request
    def start_callback_span():
        if request.endpoint != "webhooks.job_callback":
            return
        svc = services()
        job_id = signing.job_id_from_webhook_token(svc.config.secret_keys, (request.view_args or {}).get("token", ""))
        if job_id is None:
            return
        try:
            parent = svc.jobs.traceparent(job_id)
        except RedisError:
            parent = None  # the callback's own handling says what Redis did; its span starts a trace of its own
        g.callback_span = tracing.start_job_span("fluxhook.callback", job_id, parent, kind_server=True)

    @app.teardown_request
    def end_callback_span(error):
        tracing.end_job_span(g.pop("callback_span", None), error)
