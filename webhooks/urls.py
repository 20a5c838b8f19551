from core.routers import ApiRouter
from webhooks.views import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = ApiRouter()
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
urlpatterns = router.urls
