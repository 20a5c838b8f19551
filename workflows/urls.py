from core.routers import ApiRouter
from workflows import views

router = ApiRouter()
router.register("workflows", views.WorkflowViewSet, basename="workflow")

urlpatterns = [*router.urls]
