"""A collector of traces for the tests: a real HTTP server on 127.0.0.1 that receives OTLP/HTTP protobuf at
``/v1/traces``, as the OpenTelemetry SDK's exporter sends it, and keeps every span it was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devtools.processes import free_port
from devtools.trace_receiver import TraceReceiver


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    attributes: dict
    # Also exported, and as able to carry a URL or an exception's words: each event's name and attributes, the
    # status's description.
    events: tuple[tuple[str, dict], ...] = ()
    status_message: str = ""

    def texts(self) -> dict[str, str]:
        """Every string the collector received of this span, by where it was: ``name``, ``status``, each
        attribute's key, each event's ``event:<name>:<key>``."""
        found = {"name": self.name, "status": self.status_message}
        found.update({key: _text(value) for key, value in self.attributes.items()})
        for name, attributes in self.events:
            found.update({f"event:{name}:{key}": _text(value) for key, value in attributes.items()})
        return found


def _text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def leaks(spans: list[Span], words: dict[str, str]) -> dict[str, set[str]]:
    """For each of ``words`` (what it is: the word) found in any span, where: ``span name/where`` (see
    ``Span.texts``)."""
    found: dict[str, set[str]] = {}
    for span in spans:
        for where, text in span.texts().items():
            for what, word in words.items():
                if word.lower() in text.lower():
                    found.setdefault(what, set()).add(f"{span.name}/{where}")
    return found


@dataclass
class Collector:
    port: int
    spans: list[Span] = field(default_factory=list)
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of_job(self, job_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.attributes.get("fluxhook.job_id") == job_id]

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def keep(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    events = tuple((event.name, _attributes(event.attributes)) for event in span.events)
                    spans.append(Span(span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                                      service, _attributes(span.attributes), events, span.status.message))
        with self.lock:
            self.posts += 1
            self.spans.extend(spans)


def _attributes(pairs) -> dict:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":  # a captured header's values
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@contextmanager
def collecting() -> Iterator[Collector]:
    """A collector listening until leaving."""
    collector = Collector(port=free_port())
    receiver = TraceReceiver(collector.port, collector.keep)
    try:
        yield collector
    finally:
        receiver.stop()
