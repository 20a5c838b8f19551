from django.urls import path

from approvals import views
from core.routers import ApiRouter

router = ApiRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register("delegations", views.DelegationViewSet, basename="delegation")

urlpatterns = [
    *router.urls,
    path("workflows/<uuid:pk>/migrate/", views.WorkflowMigrateView.as_view(), name="workflow-migrate"),
]
