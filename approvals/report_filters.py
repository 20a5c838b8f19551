"""Query parameters of reports/series/ and the admin Reports page: period, bucket and workflow."""

from __future__ import annotations

import datetime as dt

import django_filters

from approvals.report_series import DEFAULT_DAYS, MAX_DAYS, Period, default_period
from core.exceptions import ValidationFailed
from core.filters import FilterSet, InstantFilter
from requests.models import Request
from workflows.models import WorkflowDefinition


def _workflows(request):
    organization = getattr(getattr(request, "user", None), "organization", None)
    if organization is None:
        return WorkflowDefinition.objects.none()
    return WorkflowDefinition.objects.for_organization(organization).order_by("name")


class ReportFilter(django_filters.FilterSet):
    """``since`` first day included, ``until`` first day excluded (dates, the organization's time zone)."""

    since = django_filters.DateFilter(method="keep", label="From")
    until = django_filters.DateFilter(method="keep", label="Until (excluded)")
    bucket = django_filters.ChoiceFilter(
        choices=[("day", "Day"), ("week", "Week")], method="keep", empty_label="Day", label="Per"
    )
    workflow = django_filters.ModelChoiceFilter(
        queryset=_workflows, to_field_name="key", method="keep", empty_label="All workflows", label="Workflow"
    )

    class Meta:
        model = Request
        fields = ["since", "until", "bucket", "workflow"]

    def keep(self, queryset, name, value):
        return queryset  # the values shape the report; nothing filters this queryset


class SummaryParams(FilterSet):
    """``since`` inclusive, ``until`` exclusive: ISO 8601 date or date-time (naive = UTC)."""

    since = InstantFilter(method="keep", help_text="Requests created at or after.")
    until = InstantFilter(method="keep", help_text="Requests created before.")

    class Meta:
        model = Request
        fields = ["since", "until"]

    def keep(self, queryset, name, value):
        return queryset  # the values bound the summary (approvals.reports.summary)


def report_params(*, request, organization) -> tuple[Period, WorkflowDefinition | None, ReportFilter]:
    """The period and workflow asked for (defaults: the last 30 days by day, every workflow); 400 when bad."""
    filterset = ReportFilter(request.GET, queryset=Request.objects.none(), request=request)
    if not filterset.is_valid():
        raise ValidationFailed(details={k: [str(m) for m in v] for k, v in filterset.errors.items()})
    data = filterset.form.cleaned_data
    until = data.get("until") or default_period(organization=organization).until
    since = data.get("since") or until - dt.timedelta(days=DEFAULT_DAYS)
    if until <= since:
        raise ValidationFailed(details={"until": ["Must be after since."]})
    if (until - since).days > MAX_DAYS:
        raise ValidationFailed(details={"until": [f"A report covers at most {MAX_DAYS} days."]})
    return Period(since=since, until=until, bucket=data.get("bucket") or "day"), data.get("workflow"), filterset
