"""Export of the request list (``GET requests/export/?format=csv|xlsx``), constant memory.

The rows are read in batches of ``BATCH`` requests (a server-side cursor); each batch costs a fixed
number of queries (its pending tasks with their assignees). CSV is yielded batch by batch; XLSX is
written by XlsxWriter in ``constant_memory`` mode (rows flushed to a temporary file as they are
written) and then streamed from that file.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalTask, Assignment, TaskStatus
from organizations.calendar import BusinessCalendar
from requests.models import Request

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BATCH = 500
MAX_FORM_COLUMNS = 200  # a bound on the flattened form fields (the union over the exported versions)
COLUMNS = [
    "reference",
    "title",
    "workflow",
    "version",
    "requester",
    "department",
    "status",
    "submitted",
    "decided",
    "cycle_hours",
    "current_stage",
    "current_approvers",
    "sla_breached",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def sla_breached_exists(now=None) -> Exists:
    """Any task of the request that finished after its deadline, or is pending past it."""
    now = now or timezone.now()
    late = Q(completed_at__gt=F("due_at")) | Q(status=TaskStatus.PENDING, due_at__lt=now)
    return Exists(ApprovalTask.objects.filter(late, request=OuterRef("pk"), due_at__isnull=False))


def export_queryset(queryset: QuerySet[Request]) -> QuerySet[Request]:
    return (
        queryset.select_related("definition", "workflow_version", "requester", "department")
        .annotate(sla_breached=sla_breached_exists())
        .order_by("created_at", "pk")
    )


def form_columns(queryset: QuerySet[Request]) -> list[str]:
    """``data.<field>`` for every field of the exported requests' form versions (their designed order)."""
    from workflows.models import WorkflowVersion

    version_ids = queryset.order_by().values_list("workflow_version_id", flat=True).distinct()
    names: list[str] = []
    for schema in (
        WorkflowVersion.objects.filter(pk__in=version_ids).order_by("created_at").values_list("form_schema", flat=True)
    ):
        props = (schema or {}).get("properties") or {}
        order = (schema or {}).get("x-field-order") or list(props)
        for name in [*order, *props]:
            if name in props and name not in names and len(names) < MAX_FORM_COLUMNS:
                names.append(name)
    return names


def _defuse(value):
    """Spreadsheets run cells that start like a formula: prefix those with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return _defuse(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if isinstance(value, int | float):
        return value
    return _defuse(str(value))


def _current(batch: list[Request]) -> dict:
    """request id -> (stages, approvers' e-mails) of its pending tasks: one query per batch."""
    pending = [r.pk for r in batch if r.status == "pending"]
    out: dict = {}
    if not pending:
        return out
    rows = (
        Assignment.objects.filter(
            task__request_id__in=pending, task__status=TaskStatus.PENDING, is_active=True, decision=""
        )
        .order_by("task__stage", "created_at")
        .values_list("task__request_id", "task__stage", "assignee__email")
    )
    for request_id, stage, email in rows:
        stages, emails = out.setdefault(request_id, ([], []))
        if stage not in stages:
            stages.append(stage)
        if email not in emails:
            emails.append(email)
    return out


def rows(queryset: QuerySet[Request], fields: list[str], *, organization) -> Iterator[list]:
    """One list of cells per request, in ``COLUMNS`` + ``data.<field>`` order."""
    calendar = BusinessCalendar.for_organization(organization)
    batch: list[Request] = []

    def flush():
        current = _current(batch)
        for r in batch:
            stages, approvers = current.get(r.pk, ([], []))
            hours = None
            if r.submitted_at and r.completed_at:
                hours = round(calendar.hours_between(r.submitted_at, r.completed_at), 2)
            data = r.data if isinstance(r.data, dict) else {}
            yield [
                _cell(v)
                for v in (
                    r.reference,
                    r.title,
                    r.definition.key,
                    r.workflow_version.number,
                    r.requester.email,
                    r.department.name if r.department_id else "",
                    r.status,
                    r.submitted_at.isoformat() if r.submitted_at else "",
                    r.completed_at.isoformat() if r.completed_at else "",
                    hours,
                    ", ".join(str(s) for s in stages) or (r.current_stage if r.status == "pending" else None),
                    ", ".join(approvers),
                    bool(r.sla_breached),
                    *(data.get(name) for name in fields),
                )
            ]

    for request in queryset.iterator(chunk_size=BATCH):
        batch.append(request)
        if len(batch) == BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def header(fields: list[str]) -> list[str]:
    return [*COLUMNS, *(f"data.{name}" for name in fields)]


def iter_csv(queryset: QuerySet[Request], *, organization) -> Iterator[bytes]:
    fields = form_columns(queryset)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(fields))
    for count, row in enumerate(rows(export_queryset(queryset), fields, organization=organization), start=1):
        writer.writerow(row)
        if count % BATCH == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def iter_xlsx(queryset: QuerySet[Request], *, organization, chunk: int = 64 * 1024) -> Iterator[bytes]:
    import xlsxwriter

    fields = form_columns(queryset)
    with tempfile.TemporaryFile() as target:
        book = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False})
        sheet = book.add_worksheet("requests")
        sheet.write_row(0, 0, header(fields))
        for number, row in enumerate(rows(export_queryset(queryset), fields, organization=organization), start=1):
            sheet.write_row(number, 0, row)
        book.close()
        target.seek(0)
        while block := target.read(chunk):
            yield block
