from django.urls import path

from core.routers import ApiRouter
from organizations import views

router = ApiRouter()
router.register("departments", views.DepartmentViewSet, basename="department")
router.register("holidays", views.HolidayViewSet, basename="holiday")

urlpatterns = [
    path("organizations/current/", views.CurrentOrganizationView.as_view(), name="organization-current"),
    *router.urls,
]
