"""Prometheus metrics: the definitions, and the few helpers that update them (docs/operations.md).

Counters and histograms live in the process that records them. Under gunicorn (several worker
processes) and the prefork Celery worker every process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape merges them (prometheus_client's multiprocess mode);
``config/gunicorn.conf.py`` and ``config/celery.py`` set the directory up. Gauges read from the
database (requests by state, backlogs, audit chains) are computed at scrape time by
``core.metrics_db.DatabaseCollector``, never stored.

Domain counters (decisions, SLA reminders/escalations/breaches) are derived from the audit rows
a change writes, so every transition is counted in one place (``count_audited``) and only once
its transaction has committed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from typing import Any

from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
DECISIONS = Counter("approval_decisions_total", "Task decisions committed, by outcome.", ["outcome"])
AUDIT_EVENTS = Counter("audit_events_total", "Audit rows committed, by action.", ["action"])
SLA_REMINDERS = Counter("sla_reminders_total", "SLA reminders sent (committed).")
SLA_ESCALATIONS = Counter("sla_escalations_total", "SLA escalations performed (committed).")
SLA_COMPLETIONS = Counter(
    "sla_tasks_completed_total",
    "Tasks with a deadline that were decided, by whether the deadline was missed.",
    ["breached"],
)
SLA_BREACHES = Counter("sla_breaches_total", "Tasks decided after their deadline.")
AUDIT_VERIFY = Counter("audit_verify_total", "Audit chain verifications, by result.", ["result"])
WS_CONNECTIONS = Gauge(
    "websocket_connections", "Open WebSocket connections (authenticated).", multiprocess_mode="livesum"
)
CELERY_TASKS = Counter("celery_tasks_total", "Celery tasks finished, by task name and state.", ["task", "state"])
CELERY_TASK_DURATION = Histogram(
    "celery_task_duration_seconds", "Run time of Celery tasks, by task name.", ["task"], buckets=TASK_BUCKETS
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_delivery_attempts_total", "Webhook delivery attempts, by result (success, failure).", ["result"]
)

DECISION_ACTIONS = {
    "task.approved": "approved",
    "task.rejected": "rejected",
    "task.changes_requested": "changes_requested",
}


def count_audited(entries: list[dict[str, Any]]) -> None:
    """Count a change's audit entries once its transaction commits (called by the audit writer)."""
    from core.events import on_commit

    now = timezone.now()
    updates: list[tuple[Any, dict[str, str]]] = []
    for entry in entries:
        action = entry["action"]
        updates.append((AUDIT_EVENTS, {"action": action}))
        if action in DECISION_ACTIONS:
            updates.append((DECISIONS, {"outcome": DECISION_ACTIONS[action]}))
            due_at = getattr(entry.get("target"), "due_at", None)
            if due_at is not None:
                done_at = getattr(entry["target"], "completed_at", None) or now
                breached = done_at > due_at
                updates.append((SLA_COMPLETIONS, {"breached": "true" if breached else "false"}))
                if breached:
                    updates.append((SLA_BREACHES, {}))
        elif action == "task.reminded":
            updates.append((SLA_REMINDERS, {}))
        elif action == "task.escalated":
            updates.append((SLA_ESCALATIONS, {}))

    def apply() -> None:
        for metric, labels in updates:
            (metric.labels(**labels) if labels else metric).inc()

    on_commit(apply, what="metrics")


_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def route_template(request) -> str:
    """``api/v1/requests/{pk}/``: the URL pattern that matched, never the raw path (bounded labels)."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "<unmatched>"
    route = _REGEX_GROUP.sub(lambda m: "{" + m.group(1) + "}", match.route)
    route = route.replace("^", "").replace("$", "").replace("\\.", ".")
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)  # path converters: <uuid:pk> -> {pk}
    return "/" + route.lstrip("/")


def scrape_allowed(authorization: str, remote_addr: str, *, forwarded: bool) -> bool:
    """The bearer token when ``METRICS_TOKEN`` is set; otherwise a loopback client not relayed by a proxy."""
    token = settings.METRICS_TOKEN
    if token:
        given = authorization.removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    if forwarded:  # a proxy on this machine would make every client look like loopback
        return False
    try:
        return ipaddress.ip_address(remote_addr).is_loopback
    except ValueError:
        return False


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(*, with_database: bool = True) -> CollectorRegistry:
    """The registry a scrape renders: this process (or all processes of the directory), plus database gauges."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    if with_database:
        from core.metrics_db import DatabaseCollector

        registry.register(DatabaseCollector())
    return registry


class _ProcessMetrics:
    """Everything in the default registry of this process (single-process mode)."""

    def collect(self):
        return DEFAULT_REGISTRY.collect()
