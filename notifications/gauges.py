"""The e-mail deliveries' gauges at /metrics scrape time (core/metrics_db.py)."""

from prometheus_client.core import GaugeMetricFamily

from core.metrics_db import backlog_gauges, database_gauges
from notifications.models import DeliveryStatus, EmailDelivery


@database_gauges
def email_gauges(now) -> list[GaugeMetricFamily]:
    return backlog_gauges(
        EmailDelivery.objects.all(),
        now=now,
        pending=DeliveryStatus.PENDING,
        failed=DeliveryStatus.FAILED,
        name="email_deliveries",
        help="E-mail deliveries not sent: pending (backlog) or failed.",
        age_name="email_backlog_oldest_seconds",
        age_help="Age of the oldest pending e-mail delivery (0: none).",
    )
