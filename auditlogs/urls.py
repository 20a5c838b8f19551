from auditlogs import views
from core.routers import ApiRouter

router = ApiRouter()
router.register("audit-logs", views.AuditLogViewSet, basename="auditlog")

urlpatterns = [*router.urls]
