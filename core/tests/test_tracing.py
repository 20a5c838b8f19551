"""OpenTelemetry tracing: off and costless by default; on, Django, psycopg, Redis and Celery spans in one trace."""

import json
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connections
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core import tracing
from core.testing import api_client, make_user
from core.tests.servers import ROOT, celery_worker, server_env
from notifications.models import EmailDelivery
from notifications.tests.conftest import celery_broker
from requests.tests.factories import make_flow, user_step

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure("workflow-test", exporter=exporter)
    connections.close_all()  # new connections are made through the instrumented psycopg
    try:
        yield exporter
    finally:
        tracing.uninstrument()
        connections.close_all()


def test_off_without_the_endpoint_imports_nothing():
    env = {k: v for k, v in server_env().items() if not k.startswith("OTEL_")}
    # redis-py probes for the OpenTelemetry SDK's metrics on its own; none of tracing may be loaded.
    code = (
        "WATCHED = ('opentelemetry.instrumentation', 'opentelemetry.sdk.trace', 'opentelemetry.exporter'); "
        "import sys, config.wsgi, config.asgi, config.celery; "
        "print(sorted(m for m in sys.modules if m.startswith(WATCHED)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_request_span_with_request_id_database_and_redis_children(org, spans):
    user = make_user(org, "tracer@acme-test.test", roles=["requester"])
    response = api_client(user).get("/api/v1/requests/", HTTP_X_REQUEST_ID="trace-me-123")
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(server) == 1, [s.name for s in finished]
    root = server[0]
    assert root.attributes[tracing.REQUEST_ID_ATTRIBUTE] == "trace-me-123"
    assert (
        root.attributes["http.route"].rstrip("$") == "api/v1/requests/" and root.attributes["http.status_code"] == 200
    )
    same_trace = [s for s in finished if s.context.trace_id == root.context.trace_id and s is not root]
    systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in same_trace}
    assert "postgresql" in systems, [(s.name, dict(s.attributes)) for s in same_trace]
    assert "redis" in systems, [(s.name, dict(s.attributes)) for s in same_trace]  # the API throttle's counter


def read_spans(output: str) -> list[dict]:
    found = []
    for line in output.splitlines():
        start = line.find('{"name"')
        if start >= 0:
            try:
                found.append(json.loads(line[start:]))
            except ValueError:
                continue
    return found


@pytest.mark.integration
def test_the_trace_continues_from_the_request_into_the_celery_task(org, spans, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) as the Celery broker")
    requester = make_user(org, "req-trace@acme-test.test", roles=["requester"])
    approver = make_user(org, "approver-trace@acme-test.test", roles=["requester"])
    version = make_flow(org, [user_step(1, "Approve", approver)])
    worker = celery_worker(
        tmp_path,
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="workflow-worker-test",
        OTEL_BSP_SCHEDULE_DELAY=100,
    )
    try:
        with celery_broker(settings.REDIS_URL):
            created = api_client(requester).post(
                "/api/v1/requests/",
                {"workflow": version.definition.key, "title": "Traced", "data": {"amount": 5, "vendor": "V"},
                 "submit": True},
                HTTP_X_REQUEST_ID="trace-into-task",
            )  # fmt: skip
            assert created.status_code == 201, created.json()
            deadline = time.monotonic() + 60
            while not EmailDelivery.objects.filter(to_address=approver.email, status="sent").exists():
                assert worker.poll() is None and time.monotonic() < deadline, "the worker did not send the e-mail"
                time.sleep(0.2)
            time.sleep(1)  # the worker's batch exporter flushes every 100 ms
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    root = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert root.attributes[tracing.REQUEST_ID_ATTRIBUTE] == "trace-into-task"
    publish = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert publish and all(s.context.trace_id == root.context.trace_id for s in publish)
    trace_id = f"0x{root.context.trace_id:032x}"
    runs = [s for s in read_spans(output) if s.get("kind") == "SpanKind.CONSUMER"]
    assert runs, output[-3000:]
    assert any(s["context"]["trace_id"] == trace_id for s in runs), (trace_id, [s["context"] for s in runs])
    assert all(s["resource"]["attributes"]["service.name"] == "workflow-worker-test" for s in runs)
