from core.routers import ApiRouter
from requests import views

router = ApiRouter()
router.register("requests", views.RequestViewSet, basename="request")

urlpatterns = [*router.urls]
