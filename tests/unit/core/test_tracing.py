"""What turns traces on, and what a span may not carry (fluxhook/core/tracing.py). The traces themselves, across
real processes and a real collector: tests/e2e/processes/test_traces.py."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

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
    assert not tracing.enabled()
    assert tracing.job_span("fluxhook.send", "job_x") is tracing.job_span("fluxhook.poll", "job_y", lambda: 1 / 0)
    assert tracing.current_traceparent() is None
    assert tracing.start_job_span("fluxhook.callback", "job_x", None) is None


def _span(kind: SpanKind, **attributes):
    # A provider of the test's own: the process's global one stays the API's no-op.
    return TracerProvider().get_tracer("test").start_span("s", kind=kind, attributes=attributes)


def test_a_requests_url_loses_its_credentials():
    span = _span(SpanKind.SERVER, **{"http.target": "/webhooks/bfl/abc.def-token?x=1",
                                     "http.url": "http://h:8000/v1/jobs/job_1/image?token=s3cr3t&w=1",
                                     "url.query": "sig=deadbeef", "http.route": "/webhooks/bfl/<token>"})
    tracing._redact_span_urls(span)
    attributes = dict(span.attributes)
    assert attributes["http.target"] == "/webhooks/bfl/[redacted]?x=1"
    assert attributes["http.url"] == "http://h:8000/v1/jobs/job_1/image?token=[redacted]&w=1"
    assert "deadbeef" not in attributes["url.query"]
    assert attributes["http.route"] == "/webhooks/bfl/<token>"


def test_an_outgoing_call_keeps_only_its_origin():
    span = _span(SpanKind.CLIENT, **{"http.url": "https://app.example:8443/hooks/fluxhook/app-token?k=v",
                                     "url.full": "https://delivery.bfl.ai/results/x.png?sig=abc"})
    tracing._redact_span_urls(span)
    assert span.attributes["http.url"] == "https://app.example:8443/"
    assert span.attributes["url.full"] == "https://delivery.bfl.ai/"
