from core.routers import ApiRouter
from notifications.views import NotificationViewSet

router = ApiRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [*router.urls]
