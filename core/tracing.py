"""OpenTelemetry tracing, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (docs/operations.md "Tracing").

Off, nothing of OpenTelemetry is imported and nothing is patched: no cost. On, each process
(web, ws, Celery pool process) traces Django requests, psycopg queries, Redis commands and Celery
tasks, and exports the spans in batches over OTLP/HTTP. The Celery instrumentation carries the
trace context in the task's headers, so a task continues the trace of the request that queued it.
Every server span gets the request id (``X-Request-ID``) as the attribute ``app.request_id``.

The standard ``OTEL_*`` variables apply (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_TRACES_SAMPLER``...). ``OTEL_TRACES_EXPORTER=console`` prints spans as JSON lines to
stdout instead, for a look without a collector.
"""

from __future__ import annotations

import os
import threading

REQUEST_ID_ATTRIBUTE = "app.request_id"

_lock = threading.Lock()
_configured_pid: int | None = None


def enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_TRACES_EXPORTER") == "console")


def configure(service_name: str, *, exporter=None) -> bool:
    """Set up tracing for this process once (idempotent per process). Returns whether tracing is on.

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one; then it runs even
    without the environment variable).
    """
    global _configured_pid
    if exporter is None and not enabled():
        return False
    with _lock:
        if _configured_pid == os.getpid():
            return True
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
        provider = TracerProvider(resource=resource)
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider.add_span_processor(BatchSpanProcessor(_exporter_from_environment()))
        trace.set_tracer_provider(provider)
        instrument(provider)
        _configured_pid = os.getpid()
        return True


def _exporter_from_environment():
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        import sys

        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables


def instrument(provider) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider, response_hook=_tag_request_id)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RedisInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)


def uninstrument() -> None:
    """Undo ``instrument`` (tests)."""
    global _configured_pid
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (DjangoInstrumentor(), PsycopgInstrumentor(), RedisInstrumentor(), CeleryInstrumentor()):
        instrumentor.uninstrument()
    _configured_pid = None


def _tag_request_id(span, request, response) -> None:
    # In the response hook: RequestIdMiddleware runs after the tracing middleware has started the span.
    request_id = getattr(request, "request_id", None)
    if request_id and span is not None and span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
