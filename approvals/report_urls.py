"""Routes of reports/ (include from config/api_urls.py: ``path("", include("approvals.report_urls"))``)."""

from django.urls import path

from approvals.report_views import ReportSeriesView, ReportSummaryView

urlpatterns = [
    path("reports/summary/", ReportSummaryView.as_view(), name="reports-summary"),
    path("reports/series/", ReportSeriesView.as_view(), name="reports-series"),
]
