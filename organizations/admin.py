from django.contrib import admin

from core.admin import OrgScopedAdmin, call_service
from organizations import services
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
        return False  # no service deletes an organization (its audit chain and requests stay)

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug", "is_active"]

    def create_via_service(self, request, form):
        return call_service(services.organization_create, actor=request.user, **form.cleaned_data)

    def update_via_service(self, request, stored, form):
        call_service(
            services.organization_update,
            actor=request.user,
            organization=stored,
            **self.changed(form, services.ORG_FIELDS),
        )


@admin.register(Department)
class DepartmentAdmin(OrgScopedAdmin):
    list_display = ["name", "parent", "head", "organization"]
    search_fields = ["name"]
    editable = ["name", "parent", "head"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization"] if obj is not None and request.user.is_superuser else []

    def create_via_service(self, request, form):
        return call_service(
            services.department_create,
            actor=request.user,
            organization=self.organization_for(request, form),
            **{f: form.cleaned_data.get(f) for f in self.editable},
        )

    def update_via_service(self, request, stored, form):
        call_service(
            services.department_update, actor=request.user, department=stored, **self.changed(form, self.editable)
        )

    def delete_via_service(self, request, obj):
        call_service(services.department_delete, actor=request.user, department=obj)


@admin.register(Holiday)
class HolidayAdmin(OrgScopedAdmin):
    list_display = ["date", "name", "organization"]
    date_hierarchy = "date"
    editable = ["date", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization"] if obj is not None and request.user.is_superuser else []

    def create_via_service(self, request, form):
        return call_service(
            services.holiday_create,
            actor=request.user,
            organization=self.organization_for(request, form),
            **{f: form.cleaned_data[f] for f in self.editable},
        )

    def update_via_service(self, request, stored, form):
        call_service(services.holiday_update, actor=request.user, holiday=stored, **self.changed(form, self.editable))

    def delete_via_service(self, request, obj):
        call_service(services.holiday_delete, actor=request.user, holiday=obj)
