"""Webhook deliveries' gauges at /metrics scrape time (core/metrics_db.py): the backlog, the
ones given up, and the endpoints disabled."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from core.metrics_db import backlog_gauges, database_gauges
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


@database_gauges
def webhook_gauges(now) -> list[GaugeMetricFamily]:
    backlog = backlog_gauges(
        WebhookDelivery.objects.all(),
        now=now,
        pending=DeliveryStatus.PENDING,
        failed=DeliveryStatus.FAILED,
        name="webhook_deliveries",
        help="Webhook deliveries not delivered: pending (backlog) or failed.",
        age_name="webhook_backlog_oldest_seconds",
        age_help="Age of the oldest pending webhook delivery (0: none).",
    )
    endpoints = GaugeMetricFamily("webhook_endpoints", "Webhook endpoints by state.", labels=["state"])
    active = dict(WebhookEndpoint.objects.values_list("is_active").annotate(n=Count("id")).order_by())
    endpoints.add_metric(["active"], active.get(True, 0))
    endpoints.add_metric(["disabled"], active.get(False, 0))
    return [*backlog, endpoints]
