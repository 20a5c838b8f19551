"""The admin "Reports" page (``/admin/reports/``): charts of report_series, filters, a CSV of each table.

For staff of an organization with ``reports.view``; everyone else gets 403.
"""

from __future__ import annotations

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.catalog import REPORTS_VIEW
from approvals import report_charts
from approvals.report_filters import ReportFilter, report_params
from approvals.report_series import default_period, report
from core.exceptions import ValidationFailed
from requests.models import Request

# table name -> (title, columns); the CSV of each is ?csv=<name>
TABLES = {
    "throughput": ("Requests submitted and decided", ["bucket", "submitted", "decided"]),
    "cycle_time": ("Cycle time in business hours", ["workflow", "name", "decided", "p50_hours", "p90_hours"]),
    "sla_by_workflow": (
        "SLA breach rate per workflow",
        ["workflow", "name", "tasks_with_sla", "breached", "breach_rate"],
    ),
    "sla_by_step": (
        "SLA breach rate per step",
        ["workflow", "name", "step", "tasks_with_sla", "breached", "breach_rate"],
    ),
    "approver_load": ("Approver load (pending tasks now)", ["approver", "pending"]),
}


def allowed(user) -> bool:
    return bool(user.is_active and user.is_staff and user.organization_id and user.has_code(REPORTS_VIEW))


def reports_view(request):
    if not allowed(request.user):
        raise PermissionDenied
    organization = request.user.organization
    errors = {}
    try:
        period, workflow, filterset = report_params(request=request, organization=organization)
    except ValidationFailed as exc:
        errors = exc.details
        period, workflow = default_period(organization=organization), None
        filterset = ReportFilter(None, queryset=Request.objects.none(), request=request)
    data = report(organization=organization, period=period, workflow=workflow)

    table = request.GET.get("csv")
    if table in TABLES and not errors:
        return _csv(table, data, organization.slug)

    context = {
        **admin.site.each_context(request),
        "title": "Reports",
        "filterset": filterset,
        "errors": errors,
        "data": data,
        "charts": _charts(data),
        "tables": [
            {
                "name": name,
                "title": title,
                "columns": columns,
                "rows": [[row[c] for c in columns] for row in data[name]],
            }
            for name, (title, columns) in TABLES.items()
        ],
        "query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/approvals/reports.html", context)


def _charts(data: dict) -> dict:
    throughput = data["throughput"]
    labels = [row["bucket"].strftime("%d %b") for row in throughput]
    cycle, by_workflow, by_step, load = (
        data["cycle_time"],
        data["sla_by_workflow"],
        data["sla_by_step"],
        data["approver_load"],
    )
    return {
        "throughput": report_charts.columns(
            "Requests submitted and decided",
            labels,
            {"submitted": [r["submitted"] for r in throughput], "decided": [r["decided"] for r in throughput]},
        ),
        "cycle_time": report_charts.rows(
            "Cycle time (business hours)",
            [r["name"] for r in cycle],
            {"p50 hours": [r["p50_hours"] for r in cycle], "p90 hours": [r["p90_hours"] for r in cycle]},
        ),
        "sla_by_workflow": report_charts.rows(
            "SLA breach rate per workflow",
            [r["name"] for r in by_workflow],
            {"breach rate": [r["breach_rate"] for r in by_workflow]},
            percent=True,
        ),
        "sla_by_step": report_charts.rows(
            "SLA breach rate per step",
            [f"{r['name']} / {r['step']}" for r in by_step],
            {"breach rate": [r["breach_rate"] for r in by_step]},
            percent=True,
        ),
        "approver_load": report_charts.rows(
            "Pending tasks per approver", [r["approver"] for r in load], {"pending": [r["pending"] for r in load]}
        ),
    }


def _csv(table: str, data: dict, slug: str) -> HttpResponse:
    columns = TABLES[table][1]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="{slug}-{table}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(columns)
    for row in data[table]:
        writer.writerow(["" if row[c] is None else _defuse(row[c]) for c in columns])
    return response


def _defuse(value):
    # Spreadsheets run cells that start like a formula (workflow and step names are user text).
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value
