from rest_framework.routers import SimpleRouter

from auditlogs import views

router = SimpleRouter()
router.register("audit-logs", views.AuditLogViewSet, basename="auditlog")

urlpatterns = [*router.urls]
