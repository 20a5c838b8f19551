from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.catalog import REPORTS_VIEW
from approvals.report_filters import ReportFilter, SummaryParams, report_params
from approvals.report_series import report
from approvals.reports import summary
from core.api import OrgScopedViewMixin
from core.filters import query_params


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
        params = query_params(SummaryParams, request)
        return Response(summary(organization=self.organization, since=params["since"], until=params["until"]))


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
