"""Traces: one trace per job, across the web and the worker, exported by the OpenTelemetry SDK.

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
import re
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping
from urllib.parse import urlsplit

from fluxhook.core.logs import REDACTED, redact_urls

if TYPE_CHECKING:  # the SDK is imported only when traces are on
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("fluxhook.tracing")

JOB_ID = "fluxhook.job_id"
# The settings that turn tracing on: somewhere to send spans (or the console).
_SWITCHES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
# The URL attributes of HTTP spans (the old and the stable conventions): paths and queries hold webhook tokens,
# image-link tokens and search text.
_URL_KEYS = ("http.url", "url.full")
_PATH_KEYS = ("http.target", "url.path")
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# By name, as the instrumentations spell a captured header (lower case, "-" as "_" in the old conventions): an
# app's bearer token, BFL's x-key, a session cookie, a callback's secret, a signature.
_AUTHENTICATING_HEADER = re.compile(r"auth|cookie|key|token|secret|sig|session|passw|credential", re.IGNORECASE)
# A query in quoted words: "?" right after a path, up to the end of the URL.
_QUERY = re.compile(r"(?<=[\w/])\?[^\s'\"<>]*=[^\s'\"<>]*")
_OFF: ContextManager[None] = nullcontext()

_tracer = None


def wanted(environ=os.environ) -> bool:
    if (environ.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    exporters = (environ.get("OTEL_TRACES_EXPORTER") or "").strip().lower()
    return exporters != "none" and any((environ.get(name) or "").strip() for name in _SWITCHES)


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
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(_scrubbing(exporter)))
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


def _scrubbing(exporter: SpanExporter) -> SpanExporter:
    """``exporter``, sent each span as ``exported_span`` makes it.

    Scrubbing what is exported, not a span as it starts: the instrumentations set attributes after that (Flask's
    sets its request's URL again once its hooks have run, requests its response's headers), and an ended span
    cannot be changed; the SDK has no public step between the two. Here, on the batch processor's thread, it costs
    a request nothing."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Scrubbing(SpanExporter):
        def export(self, spans) -> SpanExportResult:
            return exporter.export([exported_span(span) for span in spans])

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    return Scrubbing()


def exported_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` as it may leave the process: its attributes as ``exported_attributes`` keeps them, and its name,
    its status's description and its events' words (an exception's message quotes the URL that failed) as
    ``exported_text`` does."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanKind, Status

    attributes = span.attributes or {}
    client = span.kind == SpanKind.CLIENT
    hidden = call_paths(attributes) if client else ()

    def text(value):
        if isinstance(value, str):
            return exported_text(value, hidden)
        if isinstance(value, tuple | list):
            return type(value)(exported_text(v, hidden) if isinstance(v, str) else v for v in value)
        return value

    events = [Event(event.name, {key: text(value) for key, value in (event.attributes or {}).items()},
                    event.timestamp) for event in span.events]
    status = Status(span.status.status_code, text(span.status.description)) if span.status.description \
        else span.status
    return ReadableSpan(name=text(span.name), context=span.context, parent=span.parent, resource=span.resource,
                        attributes=exported_attributes(attributes, client), events=events, links=span.links,
                        kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
                        instrumentation_scope=span.instrumentation_scope)


def exported_attributes(attributes: Mapping[str, Any], client: bool) -> dict[str, Any]:
    """The attributes a span may export: no query (image and callback tokens, search text), no token in a path,
    no header that authenticates; an outgoing call's URL as its origin alone (a ``notify_url``'s path may hold
    the app's own token). The rest (``fluxhook.job_id``, ``http.route``) as they are."""
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        if key == "url.query" or authenticates(key):
            continue
        if key in _URL_KEYS and isinstance(value, str):
            value = origin(value) if client else server_path(value)
        elif key in _PATH_KEYS and isinstance(value, str):
            if client:
                continue
            value = server_path(value)
        kept[key] = value
    return kept


def authenticates(key: str) -> bool:
    """Whether attribute ``key`` is a captured header (``http.request.header.<name>``, the SDK's
    ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``) whose value may open something."""
    if not key.startswith(_HEADER_PREFIXES):
        return False
    return _AUTHENTICATING_HEADER.search(key.rsplit(".", 1)[1]) is not None


def server_path(target: str) -> str:
    """A request's URL or path without its query or fragment, and without the token a path may hold
    (``/webhooks/bfl/<token>``)."""
    return redact_urls(target.split("?", 1)[0].split("#", 1)[0])


def origin(url: str) -> str:
    """An outgoing call's URL as its scheme, host and port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}/"


def call_paths(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The path of an outgoing call's URL (as its span's attributes name it), which an error's words may quote
    without the origin (urllib3: ``Max retries exceeded with url: /path?query``)."""
    paths = set()
    for key in _URL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            path = urlsplit(value).path
            if path not in ("", "/"):
                paths.add(path)
    return tuple(sorted(paths, key=len, reverse=True))


def exported_text(text: str, hidden: tuple[str, ...] = ()) -> str:
    """Words a span exports (its name, an exception's message) without the queries and path tokens of URLs they
    quote, nor any of ``hidden`` (an outgoing call's path)."""
    text = _QUERY.sub("?" + REDACTED, redact_urls(text))
    for path in hidden:
        text = text.replace(path, REDACTED)
    return text
