"""The e-mail deliveries' gauges at /metrics scrape time (core/metrics_db.py)."""

from django.db.models import Count, Min
from prometheus_client.core import GaugeMetricFamily

from core.metrics_db import database_gauges
from notifications.models import DeliveryStatus, EmailDelivery


@database_gauges
def email_gauges(now) -> list[GaugeMetricFamily]:
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
    return [emails, email_age]
