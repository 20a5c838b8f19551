from django.urls import path
from rest_framework.routers import SimpleRouter

from organizations import views

router = SimpleRouter()
router.register("departments", views.DepartmentViewSet, basename="department")
router.register("holidays", views.HolidayViewSet, basename="holiday")

urlpatterns = [
    path("organizations/current/", views.CurrentOrganizationView.as_view(), name="organization-current"),
    *router.urls,
]
