"""The requests' gauges at /metrics scrape time (core/metrics_db.py)."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from core.metrics_db import database_gauges
from requests.models import Request, RequestStatus


@database_gauges
def request_gauges(now) -> list[GaugeMetricFamily]:
    requests = GaugeMetricFamily("requests", "Requests by state (from the database at scrape time).", labels=["state"])
    counts = dict(Request.objects.values_list("status").annotate(n=Count("id")).order_by())
    for state in RequestStatus.values:
        requests.add_metric([state], counts.get(state, 0))
    return [requests]
