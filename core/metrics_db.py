"""Gauges read from the database when /metrics is scraped (platform-wide: operators, not tenants).

Each is one grouped query over an indexed or small table, and the answer is kept for
``METRICS_DB_CACHE_SECONDS`` (default 15) per process, so several Prometheus servers or a
short scrape interval cost no more than one set of queries per period.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

_cache: dict[str, object] = {"at": 0.0, "families": None}
_lock = threading.Lock()


def _families() -> list[GaugeMetricFamily]:
    from approvals.models import ApprovalTask, TaskStatus
    from auditlogs.models import PLATFORM_CHAIN, AuditChainHead
    from notifications.models import DeliveryStatus, EmailDelivery
    from organizations.models import Organization
    from requests.models import Request, RequestStatus

    now = timezone.now()
    requests = GaugeMetricFamily("requests", "Requests by state (from the database at scrape time).", labels=["state"])
    counts = dict(Request.objects.values_list("status").annotate(n=Count("id")).order_by())
    for state in RequestStatus.values:
        requests.add_metric([state], counts.get(state, 0))

    overdue = GaugeMetricFamily("sla_overdue_tasks", "Pending tasks past their deadline.")
    overdue.add_metric([], ApprovalTask.objects.filter(status=TaskStatus.PENDING, due_at__lt=now).count())

    emails = GaugeMetricFamily(
        "email_deliveries", "E-mail deliveries not sent: pending (backlog) or failed.", labels=["status"]
    )
    email_counts = dict(
        EmailDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    oldest = EmailDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(at=Min("created_at"))["at"]
    for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        emails.add_metric([status], email_counts.get(status, 0))
    email_age = GaugeMetricFamily(
        "email_backlog_oldest_seconds", "Age of the oldest pending e-mail delivery (0: none)."
    )
    email_age.add_metric([], (now - oldest).total_seconds() if oldest else 0)

    chains = GaugeMetricFamily("audit_chain_length", "Rows in each audit hash chain.", labels=["organization"])
    slugs = {str(pk): slug for pk, slug in Organization.objects.values_list("pk", "slug")}
    for chain, sequence in AuditChainHead.objects.values_list("chain", "sequence"):
        chains.add_metric([PLATFORM_CHAIN if chain == PLATFORM_CHAIN else slugs.get(chain, chain)], sequence)

    families = [requests, overdue, emails, email_age, chains]
    families.extend(_extra_families(now))
    return families


def _extra_families(now) -> list[GaugeMetricFamily]:
    """Webhook deliveries: the backlog, the ones given up, and the endpoints disabled."""
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

    deliveries = GaugeMetricFamily(
        "webhook_deliveries", "Webhook deliveries not delivered: pending (backlog) or failed.", labels=["status"]
    )
    counts = dict(
        WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        deliveries.add_metric([status], counts.get(status, 0))
    oldest = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(at=Min("created_at"))["at"]
    age = GaugeMetricFamily("webhook_backlog_oldest_seconds", "Age of the oldest pending webhook delivery (0: none).")
    age.add_metric([], (now - oldest).total_seconds() if oldest else 0)
    endpoints = GaugeMetricFamily("webhook_endpoints", "Webhook endpoints by state.", labels=["state"])
    active = dict(WebhookEndpoint.objects.values_list("is_active").annotate(n=Count("id")).order_by())
    endpoints.add_metric(["active"], active.get(True, 0))
    endpoints.add_metric(["disabled"], active.get(False, 0))
    return [deliveries, age, endpoints]


class DatabaseCollector:
    def collect(self):
        ttl = getattr(settings, "METRICS_DB_CACHE_SECONDS", 15)
        with _lock:
            if _cache["families"] is None or time.monotonic() - _cache["at"] >= ttl:
                _cache["families"] = _families()
                _cache["at"] = time.monotonic()
            return list(_cache["families"])


def forget() -> None:
    """Drop the cached answer (tests)."""
    with _lock:
        _cache["families"] = None
