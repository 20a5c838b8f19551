from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.pages import password_reset_page
from approvals.action_pages import act_page
from approvals.admin_migrate import migrate_view
from approvals.admin_reports import reports_view
from core import views as core_views
from core.api_docs import RedocView, SwaggerView
from requests import admin_views as requests_admin_views

urlpatterns = [
    path("health/live/", core_views.health_live, name="health-live"),
    path("health/ready/", core_views.health_ready, name="health-ready"),
    path("metrics", core_views.metrics, name="metrics"),
    path("api/v1/", include("config.api_urls")),
    path("account/password/reset/<str:uidb64>/<str:token>/", password_reset_page, name="password-reset-page"),
    path("act/<str:token>/", act_page, name="action-link"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/reports/", admin.site.admin_view(reports_view), name="admin-reports"),
    path(
        "admin/workflows/workflowversion/<uuid:pk>/simulate/",
        admin.site.admin_view(requests_admin_views.simulate),
        name="workflow-simulate",
    ),
    path(
        "admin/workflows/workflowversion/<uuid:pk>/migrate/",
        admin.site.admin_view(migrate_view),
        name="workflow-migrate-admin",
    ),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.STATIC_URL, document_root=settings.STATIC_ROOT)

handler400 = "core.views.handler400"
handler403 = "core.views.handler403"
handler404 = "core.views.handler404"
handler500 = "core.views.handler500"
