"""/api/v1/: each app owns its routes in <app>/urls.py."""

from django.urls import include, path, re_path

from core.views import api_not_found

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("organizations.urls")),
    path("", include("workflows.urls")),
    path("", include("requests.urls")),
    path("", include("approvals.urls")),
    path("", include("approvals.report_urls")),
    path("", include("notifications.urls")),
    path("", include("auditlogs.urls")),
    path("", include("webhooks.urls")),
    path("", include("sso.urls")),
    # Anything else under /api/v1/ is a JSON 404, even with DEBUG on.
    re_path(r"^.*$", api_not_found),
]
