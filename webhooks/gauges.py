"""Webhook deliveries' gauges at /metrics scrape time (core/metrics_db.py): the backlog, the
ones given up, and the endpoints disabled."""

from django.db.models import Count, Min
from prometheus_client.core import GaugeMetricFamily

from core.metrics_db import database_gauges
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


@database_gauges
def webhook_gauges(now) -> list[GaugeMetricFamily]:
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
