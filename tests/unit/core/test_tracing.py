"""What turns traces on, and what a span may not carry (fluxhook/core/tracing.py). The traces themselves, across
real processes and a real collector: tests/e2e/processes/test_traces.py."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from fluxhook.core import tracing


@pytest.mark.parametrize("environ, on", [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x", "OTEL_BSP_SCHEDULE_DELAY": "100"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
])
def test_traces_are_on_only_when_the_environment_names_where_they_go(environ, on):
    assert tracing.wanted(environ) is on


def test_off_a_job_span_is_one_shared_no_op_and_no_traceparent_is_kept():
    assert tracing.job_span("fluxhook.send", "job_x") is tracing.job_span("fluxhook.poll", "job_y", lambda: 1 / 0)
    assert tracing.current_traceparent() is None
    assert tracing.start_job_span("fluxhook.callback", "job_x", None) is None


def test_a_requests_path_keeps_no_query_and_no_token():
    assert tracing.server_path("/webhooks/bfl/abc.def-token?x=1") == "/webhooks/bfl/[redacted]"
    assert tracing.server_path("http://h:8000/v1/jobs/job_1/image?token=s3cr3t&w=1#f") == \
        "http://h:8000/v1/jobs/job_1/image"
    assert tracing.server_path("/v1/jobs?q=a%20red%20fox") == "/v1/jobs"
    # Ids are what a path may carry, and what a trace is searched by.
    assert tracing.server_path("/v1/jobs/job_01ABC/image") == "/v1/jobs/job_01ABC/image"


def test_an_outgoing_calls_url_keeps_only_its_origin():
    assert tracing.origin("https://app.example:8443/hooks/app-token?k=v") == "https://app.example:8443/"
    assert tracing.origin("https://delivery.bfl.ai/results/x.png?sig=abc") == "https://delivery.bfl.ai/"
    assert tracing.origin("http://h:notaport/p") == "http://h/"


@pytest.mark.parametrize("key, drop", [
    ("http.request.header.authorization", True),
    ("http.request.header.x_key", True),  # BFL's key, as the old conventions spell a captured header
    ("http.request.header.x-api-key", True),
    ("http.request.header.cookie", True),
    ("http.response.header.set_cookie", True),
    ("http.request.header.x_webhook_secret", True),
    ("http.request.header.webhook-signature", True),
    ("http.request.header.user_agent", False),
    ("http.response.header.content_type", False),
    ("fluxhook.job_id", False),
    ("http.route", False),
])
def test_a_captured_header_that_authenticates_is_known_by_its_name(key, drop):
    assert tracing.authenticates(key) is drop


def test_a_server_spans_attributes_keep_the_job_and_the_route_and_nothing_that_opens_or_says_anything():
    kept = tracing.exported_attributes({
        "http.target": "/v1/jobs/job_1/image?token=s3cr3t", "url.path": "/webhooks/bfl/tok3n",
        "url.query": "q=a+red+fox", "http.url": "http://h/v1/jobs?q=fox",
        "http.request.header.authorization": ("Bearer app-key",), "http.request.header.user_agent": ("curl",),
        "http.route": "/v1/jobs/<job_id>/image", "fluxhook.job_id": "job_1", "http.status_code": 200,
    }, client=False)
    assert kept == {"http.target": "/v1/jobs/job_1/image", "url.path": "/webhooks/bfl/[redacted]",
                    "http.url": "http://h/v1/jobs", "http.request.header.user_agent": ("curl",),
                    "http.route": "/v1/jobs/<job_id>/image", "fluxhook.job_id": "job_1", "http.status_code": 200}


def test_an_outgoing_calls_attributes_keep_its_origin_and_no_path():
    kept = tracing.exported_attributes({
        "http.url": "https://app.example/hooks/app-token?k=v", "url.full": "https://delivery.bfl.ai/x.png?sig=a",
        "url.path": "/hooks/app-token", "http.request.header.x_key": ("bfl-key",), "http.method": "POST",
    }, client=True)
    assert kept == {"http.url": "https://app.example/", "url.full": "https://delivery.bfl.ai/", "http.method": "POST"}


def test_words_lose_the_queries_and_path_tokens_they_quote_and_an_outgoing_calls_path():
    message = ("HTTPConnectionPool(host='app.example', port=80): Max retries exceeded with url: "
               "/hooks/app-token?k=app-secret (Caused by ...); was /webhooks/bfl/tok3n, see http://h/x?q=fox&w=1")
    said = tracing.exported_text(message, tracing.call_paths({"http.url": "http://app.example/hooks/app-token?k"}))
    assert "app-token" not in said and "app-secret" not in said and "tok3n" not in said and "fox" not in said
    assert said.startswith("HTTPConnectionPool(host='app.example', port=80): Max retries exceeded with url: ")
    # Words without a URL are as they were; a question is no query.
    assert tracing.exported_text("GET /v1/jobs/<job_id>") == "GET /v1/jobs/<job_id>"
    assert tracing.exported_text("ready? yes") == "ready? yes"
    assert tracing.call_paths({"http.url": "https://app.example/"}) == ()


def _exporting():
    """A provider of the test's own (the process's global one stays the API's no-op), its spans exported
    through ``tracing._scrubbing`` as ``setup`` exports them, into memory."""
    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing._scrubbing(kept)))
    return provider, kept


def test_what_is_exported_is_scrubbed_even_when_set_after_the_span_started():
    provider, kept = _exporting()
    span = provider.get_tracer("test").start_span("GET /v1/jobs", kind=SpanKind.SERVER,
                                                  attributes={"fluxhook.job_id": "job_1"})
    # As Flask's instrumentation does once its hooks have run, and requests' with an error.
    span.set_attribute("http.target", "/v1/jobs?q=a+red+fox")
    span.set_attribute("http.request.header.authorization", ("Bearer app-key",))
    span.record_exception(ValueError("no answer from http://h/v1/jobs/job_1/image?token=s3cr3t"))
    span.set_status(Status(StatusCode.ERROR, "ValueError: /webhooks/bfl/tok3n"))
    span.end()
    [exported] = kept.get_finished_spans()
    assert dict(exported.attributes) == {"fluxhook.job_id": "job_1", "http.target": "/v1/jobs"}
    [event] = exported.events
    assert "s3cr3t" not in event.attributes["exception.message"] and "s3cr3t" not in str(event.attributes)
    assert event.attributes["exception.type"] == "ValueError"
    assert exported.status.description == "ValueError: /webhooks/bfl/[redacted]"
    assert (exported.name, exported.kind, exported.context, exported.start_time, exported.end_time) == \
        (span.name, span.kind, span.context, span.start_time, span.end_time)
    assert exported.instrumentation_scope == span.instrumentation_scope


def test_a_flask_requests_span_leaves_without_its_query_token_or_bearer(monkeypatch):
    """Flask's own instrumentation, which sets a request's attributes again after the span started (the leak an
    ``on_start`` scrubber had)."""
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "authorization,user-agent")
    provider, kept = _exporting()
    app = Flask("traced")
    app.add_url_rule("/v1/jobs/<job_id>/image", "image", lambda job_id: "png")
    FlaskInstrumentor.instrument_app(app, tracer_provider=provider)
    try:
        answer = app.test_client().get("/v1/jobs/job_1/image?token=s3cr3t&q=red+fox",
                                       headers={"Authorization": "Bearer app-key", "User-Agent": "ua"})
    finally:
        FlaskInstrumentor.uninstrument_app(app)
    assert answer.status_code == 200
    [exported] = kept.get_finished_spans()
    attributes = dict(exported.attributes)
    assert attributes["http.route"] == "/v1/jobs/<job_id>/image"
    assert attributes.get("http.target", attributes.get("url.path")) == "/v1/jobs/job_1/image"
    assert attributes.get("http.request.header.user_agent") == ("ua",)  # the capture is on
    assert not any(word in str(attributes) for word in ("s3cr3t", "red+fox", "app-key")), attributes
