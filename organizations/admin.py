from django.contrib import admin

from core.admin import OrgScopedAdmin
from organizations.models import Department, Holiday, Organization


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    org_field = "pk"
    audit_action_prefix = "organization"
    list_display = ["name", "slug", "timezone", "is_active"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request):
        qs = self.model.objects.all()
        return qs if request.user.is_superuser else qs.filter(pk=request.user.organization_id)

    def _org_id_of(self, obj):
        return obj.pk

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug", "is_active"]


@admin.register(Department)
class DepartmentAdmin(OrgScopedAdmin):
    list_display = ["name", "parent", "head", "organization"]
    search_fields = ["name"]


@admin.register(Holiday)
class HolidayAdmin(OrgScopedAdmin):
    list_display = ["date", "name", "organization"]
    date_hierarchy = "date"
