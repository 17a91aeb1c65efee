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
                    spans.append(Span(span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                                      service, _attributes(span.attributes)))
        with self.lock:
            self.posts += 1
            self.spans.extend(spans)


def _attributes(pairs) -> dict:
    values = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


@contextmanager
def collecting() -> Iterator[Collector]:
    """A collector listening until leaving."""
    collector = Collector(port=free_port())
    receiver = TraceReceiver(collector.port, collector.keep)
    try:
        yield collector
    finally:
        receiver.stop()
