"""Report selectors: request counts by status, cycle times and SLA breach rate per workflow.

Four queries whatever the volume (grouped aggregates). Cycle time = submitted_at -> completed_at of
requests that reached approved or rejected. A task with a deadline is *breached* when it was
completed after its ``due_at`` or is still open past it; the rate is breached / tasks with a deadline.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, ExpressionWrapper, F, FloatField, Func, Max, Q
from django.utils import timezone

from approvals.models import ApprovalTask, TaskStatus
from approvals.report_series import percentile
from core.db_router import replica_reads
from requests.models import Request, RequestStatus
from workflows.models import WorkflowDefinition

COMPLETED = [RequestStatus.APPROVED, RequestStatus.REJECTED]


class _Percentile(Aggregate):
    """PostgreSQL ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)``."""

    function = "percentile_cont"
    template = "%(function)s(%(p)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, p: float, **extra):
        super().__init__(expression, p=float(p), **extra)


def _epoch(expression):
    return Func(expression, template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())


def _hours(value) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else float(value)
    return round(seconds / 3600, 2)


def summary(*, organization, since: datetime | None = None, until: datetime | None = None, now=None) -> dict:
    with replica_reads():  # reports tolerate a little lag: the replica when there is one (core/db_router.py)
        return _summary(organization=organization, since=since, until=until, now=now or timezone.now())


def _summary(*, organization, since: datetime | None, until: datetime | None, now) -> dict:
    requests = Request.objects.for_organization(organization)
    if since:
        requests = requests.filter(created_at__gte=since)
    if until:
        requests = requests.filter(created_at__lt=until)

    by_status: dict = {}
    for row in requests.values("definition_id", "status").annotate(n=Count("id")).order_by():
        by_status.setdefault(row["definition_id"], {})[row["status"]] = row["n"]

    cycle = ExpressionWrapper(F("completed_at") - F("submitted_at"), output_field=DurationField())
    aggregates = {"completed": Count("id"), "avg": Avg(cycle), "max": Max(cycle)}
    if connection.vendor == "postgresql":
        aggregates["p50"] = _Percentile(_epoch(cycle), 0.5)
        aggregates["p90"] = _Percentile(_epoch(cycle), 0.9)
    completed = requests.filter(status__in=COMPLETED, submitted_at__isnull=False, completed_at__isnull=False)
    cycles = {row["definition_id"]: row for row in completed.values("definition_id").annotate(**aggregates).order_by()}
    if connection.vendor != "postgresql":
        # No percentile aggregate here (SQLite): the same interpolation in Python over the completed requests.
        seconds: dict = {}
        for definition_id, started, ended in completed.values_list("definition_id", "submitted_at", "completed_at"):
            seconds.setdefault(definition_id, []).append((ended - started).total_seconds())
        for definition_id, values in seconds.items():
            cycles[definition_id]["p50"] = percentile(values, 0.5)
            cycles[definition_id]["p90"] = percentile(values, 0.9)

    breached = Q(completed_at__gt=F("due_at")) | Q(completed_at__isnull=True, due_at__lt=now)
    slas = {
        row["request__definition_id"]: row
        for row in ApprovalTask.objects.filter(request__in=requests.values("pk"), due_at__isnull=False)
        .exclude(status=TaskStatus.SKIPPED)
        .values("request__definition_id")
        .annotate(
            with_sla=Count("id"),
            breached=Count("id", filter=breached),
            overdue_now=Count("id", filter=Q(status=TaskStatus.PENDING, due_at__lt=now)),
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
        )
        .order_by()
    }

    ids = set(by_status) | set(cycles) | set(slas)
    definitions = WorkflowDefinition.all_objects.filter(pk__in=ids).only("id", "key", "name").order_by("name")
    workflows, totals = [], {"by_status": dict.fromkeys(RequestStatus.values, 0)}
    t_sla = {"tasks_with_sla": 0, "breached": 0, "overdue_now": 0, "escalated": 0}
    t_completed, t_seconds = 0, 0.0
    for d in definitions:
        counts = {s: by_status.get(d.pk, {}).get(s, 0) for s in RequestStatus.values}
        for s, n in counts.items():
            totals["by_status"][s] += n
        c = cycles.get(d.pk) or {}
        s = slas.get(d.pk) or {}
        sla = {
            "tasks_with_sla": s.get("with_sla", 0),
            "breached": s.get("breached", 0),
            "overdue_now": s.get("overdue_now", 0),
            "escalated": s.get("escalated", 0),
        }
        sla["breach_rate"] = round(sla["breached"] / sla["tasks_with_sla"], 4) if sla["tasks_with_sla"] else None
        for k in t_sla:
            t_sla[k] += sla[k]
        if c.get("completed"):
            t_completed += c["completed"]
            t_seconds += c["avg"].total_seconds() * c["completed"]
        workflows.append(
            {
                "workflow": {"id": str(d.pk), "key": d.key, "name": d.name},
                "requests": {"total": sum(counts.values()), "by_status": counts},
                "cycle_time_hours": {
                    "completed": c.get("completed", 0),
                    "avg": _hours(c.get("avg")),
                    "p50": _hours(c.get("p50")),
                    "p90": _hours(c.get("p90")),
                    "max": _hours(c.get("max")),
                },
                "sla": sla,
            }
        )
    t_sla["breach_rate"] = round(t_sla["breached"] / t_sla["tasks_with_sla"], 4) if t_sla["tasks_with_sla"] else None
    return {
        "generated_at": now,
        "period": {"since": since, "until": until},
        "requests": {"total": sum(totals["by_status"].values()), "by_status": totals["by_status"]},
        "cycle_time_hours": {
            "completed": t_completed,
            "avg": round(t_seconds / t_completed / 3600, 2) if t_completed else None,
        },
        "sla": t_sla,
        "workflows": workflows,
    }
