"""The tasks' gauges at /metrics scrape time (core/metrics_db.py)."""

from prometheus_client.core import GaugeMetricFamily

from approvals.models import ApprovalTask, TaskStatus
from core.metrics_db import database_gauges


@database_gauges
def task_gauges(now) -> list[GaugeMetricFamily]:
    overdue = GaugeMetricFamily("sla_overdue_tasks", "Pending tasks past their deadline.")
    overdue.add_metric([], ApprovalTask.objects.filter(status=TaskStatus.PENDING, due_at__lt=now).count())
    return [overdue]
