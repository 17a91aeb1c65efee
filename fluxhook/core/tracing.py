"""Traces (SPEC §7): one trace per job, across the web and the worker, exported by the OpenTelemetry SDK.

On only when the environment names where traces go (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER``); the SDK reads the rest of its ``OTEL_*``
settings itself. Off, nothing is installed: no SDK provider, no instrumentation, and ``job_span`` is a shared
no-op, so a job pays nothing for it.

A job's trace starts with its creation: the creating span's W3C ``traceparent`` is kept in the job's record
(``Job.traceparent``), and each later step (send, poll, callback, download, store, notify), in whichever process
does it, starts its span as a child of that context.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable, ContextManager

from fluxhook.core.logs import redact_urls

if TYPE_CHECKING:  # the SDK is imported only when traces are on
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("fluxhook.tracing")

JOB_ID = "fluxhook.job_id"
# The settings that turn tracing on: somewhere to send spans (or the console).
_SWITCHES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
# The URL attributes of HTTP spans: paths and queries hold webhook tokens and image signatures.
_SERVER_URL_KEYS = ("http.url", "http.target", "url.full", "url.path", "url.query")
_CLIENT_URL_KEYS = ("http.url", "url.full")
_OFF: ContextManager[None] = nullcontext()

_tracer = None


def wanted(environ=os.environ) -> bool:
    """Whether the environment asks for traces."""
    if (environ.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    exporters = (environ.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    return exporters != "none" and any((environ.get(name) or "").strip() for name in _SWITCHES)


def enabled() -> bool:
    """Whether this process exports traces (``setup`` found them asked for)."""
    return _tracer is not None


def setup(service_name: str) -> bool:
    """Install the SDK's provider, its exporters and the requests and Redis instrumentations, if the
    environment asks for traces (``wanted``); whether traces are on. Once per process."""
    global _tracer
    if _tracer is not None or not wanted():
        return _tracer is not None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import OTEL_SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({} if os.environ.get(OTEL_SERVICE_NAME) else {"service.name": service_name})
    provider = TracerProvider(resource=resource, sampler=_sampler())
    provider.add_span_processor(_redacting_processor())
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument()
    _tracer = trace.get_tracer("fluxhook")
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIds())
    log.info("traces on", extra={"service": resource.attributes.get("service.name")})
    return True


def job_span(name: str, job_id: str, parent: str | Callable[[], str | None] | None = None) -> ContextManager:
    """A span for one step of job ``job_id``, current while it runs, in the job's trace: ``parent`` is the
    traceparent its record keeps (or a function that reads it, called only when traces are on). Within another
    span of that trace (a poll within the sweep's check) it is that span's child; within none, or one of another
    trace (a request's), the record's context is its parent; with no traceparent, the current span, if any, is.
    Traces off: a no-op."""
    if _tracer is None:
        return _OFF
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    traceparent = parent() if callable(parent) else parent
    current = trace.get_current_span().get_span_context()
    within = current.is_valid and traceparent is not None and traceparent[3:35] == format(current.trace_id, "032x")
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent and not within \
        else None
    return _tracer.start_as_current_span(name, context=context, attributes={JOB_ID: job_id})


def start_job_span(name: str, job_id: str, traceparent: str | None, kind_server: bool = False):
    """Like ``job_span``, for a span that outlives one block (a callback's whole request): the span, made
    current until ``end_job_span`` is given what this returns; None with traces off."""
    if _tracer is None:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    span = _tracer.start_span(name, context=parent, attributes={JOB_ID: job_id},
                              kind=trace.SpanKind.SERVER if kind_server else trace.SpanKind.INTERNAL)
    return span, otel_context.attach(trace.set_span_in_context(span))


def end_job_span(started, error: BaseException | None = None) -> None:
    """End a span ``start_job_span`` made current."""
    if started is None:
        return
    from opentelemetry import context as otel_context

    span, token = started
    if error is not None:
        span.record_exception(error)
    otel_context.detach(token)
    span.end()


def current_traceparent() -> str | None:
    """The current span's W3C traceparent (kept with a new job); None with traces off or no span."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


class TraceIds(logging.Filter):
    """Adds ``trace_id`` (and ``span_id``) to a log record made while a span is current; installed with traces on."""

    def filter(self, record: logging.LogRecord) -> bool:
        from opentelemetry import trace

        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


def _exporters() -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``: OTLP over HTTP, protobuf)."""
    names = [n.strip().lower() for n in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",") if n.strip()]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name in ("otlp", "otlp_proto_http"):
            # Reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT and _COMPRESSION itself.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        else:
            log.warning("OTEL_TRACES_EXPORTER names an exporter fluxhook does not ship; ignored",
                        extra={"exporter": name, "known": "otlp, console"})
    return exporters


def _sampler():
    """The SDK's sampler when ``OTEL_TRACES_SAMPLER`` names one; else every trace that starts from a request or a
    job's step, and no trace of a lone Redis command or HTTP call outside them (the worker's loops make one a
    second, each its own trace)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the provider reads it
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind

    class NoLoneCalls(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return "NoLoneCalls"

    return ParentBased(root=NoLoneCalls())


def _instrument() -> None:
    """The requests and Redis instrumentations, unless ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names them."""
    disabled = {n.strip() for n in (os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") or "").split(",")}
    if "requests" not in disabled:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().instrument()
    if "redis" not in disabled:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()


def _redact_span_urls(span) -> None:
    """Take the credentials out of a new HTTP span's URL attributes; an outgoing call keeps only its origin (a
    notify_url's path may hold the app's own token)."""
    from opentelemetry.trace import SpanKind

    attributes = span.attributes or {}
    client = span.kind == SpanKind.CLIENT
    for key in _CLIENT_URL_KEYS if client else _SERVER_URL_KEYS:
        value = attributes.get(key)
        if not isinstance(value, str):
            continue
        if client:
            span.set_attribute(key, _origin(value))
        else:
            # A query alone (url.query) has no "?" for the scrubber to know it by.
            span.set_attribute(key, redact_urls("?" + value)[1:] if key == "url.query" else redact_urls(value))


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/"


def _redacting_processor():
    """A span processor that runs ``_redact_span_urls`` as each span starts, before any exporter sees it."""
    from opentelemetry.sdk.trace import SpanProcessor

    class RedactUrls(SpanProcessor):
        def on_start(self, span, parent_context=None) -> None:
            _redact_span_urls(span)

    return RedactUrls()
