from rest_framework.routers import SimpleRouter

from approvals import views

router = SimpleRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register("delegations", views.DelegationViewSet, basename="delegation")

urlpatterns = [*router.urls]
