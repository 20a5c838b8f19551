from rest_framework.routers import SimpleRouter

from workflows import views

router = SimpleRouter()
router.register("workflows", views.WorkflowViewSet, basename="workflow")

urlpatterns = [*router.urls]
