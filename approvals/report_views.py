from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.catalog import REPORTS_VIEW
from approvals.report_filters import ReportFilter, report_params
from approvals.report_series import report
from approvals.reports import summary
from core.api import OrgScopedViewMixin
from core.exceptions import ValidationFailed


def _instant(name: str, value: str | None):
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is not None:
            parsed = timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
    if parsed is None:
        raise ValidationFailed(details={name: ["Use an ISO 8601 date or date-time."]})
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed)
    return parsed


class ReportSummaryView(OrgScopedViewMixin, APIView):
    """Counts by status, cycle times and SLA breach rate per workflow, for the caller's organization."""

    required_permissions = {"read": REPORTS_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Requests created at or after."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Requests created before."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        since = _instant("since", request.query_params.get("since"))
        until = _instant("until", request.query_params.get("until"))
        return Response(summary(organization=self.organization, since=since, until=until))


class ReportSeriesView(OrgScopedViewMixin, APIView):
    """Time series and tables for the caller's organization: throughput, cycle times, SLA breaches, approver load."""

    required_permissions = {"read": REPORTS_VIEW}
    filterset_class = ReportFilter

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATE, description="First day (default: 30 days before until)."),
            OpenApiParameter("until", OpenApiTypes.DATE, description="First day excluded (default: tomorrow)."),
            OpenApiParameter("bucket", str, enum=["day", "week"], description="Throughput per day (default) or week."),
            OpenApiParameter("workflow", str, description="A workflow key (default: every workflow)."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        period, workflow, _ = report_params(request=request, organization=self.organization)
        return Response(report(organization=self.organization, period=period, workflow=workflow))
