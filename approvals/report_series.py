"""Report time series and tables (reports/series/ and the admin "Reports" page), PostgreSQL and SQLite alike.

- throughput: requests submitted and decided (approved or rejected) per day or week, in the
  organization's time zone (grouped in the database with ``Trunc``, empty buckets filled in);
- cycle time per workflow: p50/p90 of submitted -> decided in *business hours* of the
  organization's calendar (computed in Python from the period's decided requests, so the
  figures are the same on every database);
- SLA breach rate per workflow and per step: tasks with a deadline that were decided after it or
  are still open past it, over the tasks with a deadline;
- approver load: pending tasks per active assignee (now, not per period).

The period is bounded (``MAX_DAYS``) so a report's cost is too. Reads go to the replica when
there is one (``core.db_router``).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass

from django.db.models import Count, F, Q
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from approvals.models import ApprovalTask, Assignment, TaskStatus
from core.db_router import replica_reads
from organizations.calendar import BusinessCalendar
from requests.models import Request, RequestStatus

MAX_DAYS = 366
DEFAULT_DAYS = 30
DECIDED = [RequestStatus.APPROVED, RequestStatus.REJECTED]


@dataclass(frozen=True)
class Period:
    since: dt.date  # first day included
    until: dt.date  # first day excluded
    bucket: str  # "day" or "week"

    def bounds(self, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        return (dt.datetime.combine(self.since, dt.time.min, tz), dt.datetime.combine(self.until, dt.time.min, tz))

    def buckets(self) -> list[dt.date]:
        step = dt.timedelta(days=1 if self.bucket == "day" else 7)
        first = self.since if self.bucket == "day" else self.since - dt.timedelta(days=self.since.weekday())
        out, day = [], first
        while day < self.until:
            out.append(day)
            day += step
        return out


def default_period(*, organization, today: dt.date | None = None) -> Period:
    today = today or timezone.now().astimezone(zoneinfo.ZoneInfo(organization.timezone)).date()
    until = today + dt.timedelta(days=1)
    return Period(since=until - dt.timedelta(days=DEFAULT_DAYS), until=until, bucket="day")


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def report(*, organization, period: Period, workflow=None, now: dt.datetime | None = None) -> dict:
    """Every series and table of the Reports page for one organization, period and (optional) workflow."""
    now = now or timezone.now()
    with replica_reads():
        return {
            "period": {"since": period.since, "until": period.until, "bucket": period.bucket},
            "workflow": workflow.key if workflow is not None else None,
            "throughput": _throughput(organization, period, workflow),
            "cycle_time": _cycle_times(organization, period, workflow),
            "sla_by_workflow": _sla(organization, period, workflow, now, by_step=False),
            "sla_by_step": _sla(organization, period, workflow, now, by_step=True),
            "approver_load": _approver_load(organization, workflow),
        }


def _requests(organization, workflow):
    qs = Request.objects.for_organization(organization)
    return qs.filter(definition=workflow) if workflow is not None else qs


def _throughput(organization, period: Period, workflow) -> list[dict]:
    tz = zoneinfo.ZoneInfo(organization.timezone)
    start, end = period.bounds(tz)
    trunc = TruncDay if period.bucket == "day" else TruncWeek
    requests = _requests(organization, workflow)

    def counts(field: str, extra: Q) -> dict[dt.date, int]:
        rows = (
            requests.filter(extra, **{f"{field}__gte": start, f"{field}__lt": end})
            .annotate(bucket=trunc(field, tzinfo=tz))
            .values("bucket")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {_as_date(row["bucket"], tz): row["n"] for row in rows}

    submitted = counts("submitted_at", Q())
    decided = counts("completed_at", Q(status__in=DECIDED))
    return [
        {"bucket": day, "submitted": submitted.get(day, 0), "decided": decided.get(day, 0)} for day in period.buckets()
    ]


def _as_date(value, tz) -> dt.date:
    if isinstance(value, dt.datetime):
        return (value.astimezone(tz) if value.tzinfo else value).date()
    return value


def _cycle_times(organization, period: Period, workflow) -> list[dict]:
    tz = zoneinfo.ZoneInfo(organization.timezone)
    start, end = period.bounds(tz)
    calendar = BusinessCalendar.for_organization(organization)
    rows = (
        _requests(organization, workflow)
        .filter(status__in=DECIDED, completed_at__gte=start, completed_at__lt=end, submitted_at__isnull=False)
        .values_list("definition__key", "definition__name", "submitted_at", "completed_at")
        .order_by()
    )
    hours: dict[tuple[str, str], list[float]] = {}
    for key, name, submitted, completed in rows:
        hours.setdefault((key, name), []).append(calendar.hours_between(submitted, completed))
    return [
        {
            "workflow": key,
            "name": name,
            "decided": len(values),
            "p50_hours": _round(percentile(values, 0.5)),
            "p90_hours": _round(percentile(values, 0.9)),
        }
        for (key, name), values in sorted(hours.items(), key=lambda item: item[0][1])
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _sla(organization, period: Period, workflow, now: dt.datetime, *, by_step: bool) -> list[dict]:
    """Tasks activated in the period with a deadline: how many missed it."""
    tz = zoneinfo.ZoneInfo(organization.timezone)
    start, end = period.bounds(tz)
    tasks = ApprovalTask.objects.for_organization(organization).filter(
        due_at__isnull=False, created_at__gte=start, created_at__lt=end
    )
    if workflow is not None:
        tasks = tasks.filter(request__definition=workflow)
    breached = Q(completed_at__gt=F("due_at")) | Q(completed_at__isnull=True, due_at__lt=now)
    keys = ["request__definition__key", "request__definition__name"] + (["step__name"] if by_step else [])
    rows = (
        tasks.exclude(status__in=[TaskStatus.SKIPPED, TaskStatus.CANCELLED])
        .values(*keys)
        .annotate(with_sla=Count("id"), breached=Count("id", filter=breached))
        .order_by(*keys[1:])
    )
    out = []
    for row in rows:
        item = {"workflow": row["request__definition__key"], "name": row["request__definition__name"]}
        if by_step:
            item["step"] = row["step__name"]
        item.update(
            tasks_with_sla=row["with_sla"],
            breached=row["breached"],
            breach_rate=round(row["breached"] / row["with_sla"], 4) if row["with_sla"] else None,
        )
        out.append(item)
    return out


def _approver_load(organization, workflow) -> list[dict]:
    assignments = Assignment.objects.for_organization(organization).filter(
        is_active=True, decision="", task__status=TaskStatus.PENDING
    )
    if workflow is not None:
        assignments = assignments.filter(task__request__definition=workflow)
    rows = (
        assignments.values("assignee__email")
        .annotate(pending=Count("task", distinct=True))
        .order_by("-pending", "assignee__email")
    )
    return [{"approver": row["assignee__email"], "pending": row["pending"]} for row in rows]
