"""Admin plumbing: staff users who are not superusers see and edit only their organization.

Access to an admin page is granted by the role catalog (``admin_permission_code``),
not by Django's per-model permissions, so there is one source of truth for RBAC.
Every save and delete through the admin is audited.
"""

from django.contrib import admin, messages
from django.db import transaction

from auditlogs.services import audit_record, model_changes, snapshot


def _is_platform_admin(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class OrgScopedAdmin(admin.ModelAdmin):
    """For models with an ``organization`` field (or a path to one: ``org_field``)."""

    admin_permission_code = "org.manage"
    org_field = "organization"
    audit_action_prefix: str | None = None  # e.g. "department" -> department.created/updated/deleted

    # --- access ---------------------------------------------------------------
    def _has_code(self, request) -> bool:
        user = request.user
        if _is_platform_admin(request):
            return True
        return bool(
            user.is_active and user.is_staff and user.organization_id and user.has_code(self.admin_permission_code)
        )

    def has_module_permission(self, request):
        return self._has_code(request)

    def has_view_permission(self, request, obj=None):
        return self._has_code(request) and self._owns(request, obj)

    def has_add_permission(self, request):
        return self._has_code(request)

    def has_change_permission(self, request, obj=None):
        return self._has_code(request) and self._owns(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._has_code(request) and self._owns(request, obj)

    def _org_id_of(self, obj):
        value = obj
        for part in self.org_field.split("__"):
            value = getattr(value, part, None)
        return getattr(value, "pk", value)

    def _owns(self, request, obj) -> bool:
        if obj is None or _is_platform_admin(request):
            return True
        return self._org_id_of(obj) == request.user.organization_id

    # --- scoping --------------------------------------------------------------
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _is_platform_admin(request):
            return qs
        return qs.filter(
            **{f"{self.org_field}_id" if "__" not in self.org_field else self.org_field: request.user.organization_id}
        )

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not _is_platform_admin(request) and self.org_field == "organization":
            exclude.append("organization")
        return exclude

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return self._scope_choices(db_field, request, field)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return self._scope_choices(db_field, request, field)

    def _scope_choices(self, db_field, request, field):
        if field is None or _is_platform_admin(request):
            return field
        related = db_field.related_model
        org_id = request.user.organization_id
        if related._meta.label_lower == "organizations.organization":
            field.queryset = field.queryset.filter(pk=org_id)
        elif any(f.name == "organization" for f in related._meta.fields):
            field.queryset = field.queryset.filter(organization_id=org_id)
        return field

    # --- writes (audited) ---------------------------------------------------------
    def _action(self, obj, verb: str) -> str:
        prefix = self.audit_action_prefix or obj._meta.model_name
        return f"{prefix}.{verb}"

    def save_model(self, request, obj, form, change):
        if not change and not _is_platform_admin(request) and self.org_field == "organization":
            obj.organization_id = request.user.organization_id
        before = snapshot(obj.__class__.objects.get(pk=obj.pk)) if change and obj.pk else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                action=self._action(obj, "updated" if change else "created"),
                actor=request.user,
                organization=self._org_id_of(obj),
                target=obj,
                changes={**model_changes(obj, before), "via": "admin"},
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(
                action=self._action(obj, "deleted"),
                actor=request.user,
                organization=self._org_id_of(obj),
                target=obj,
                changes={"via": "admin"},
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class SoftDeleteAdmin(OrgScopedAdmin):
    """Lists deleted rows too (filter "Deleted"), deletes softly and can restore."""

    actions = ["restore_selected"]

    def get_queryset(self, request):
        qs = self.model.all_objects.get_queryset()
        if not _is_platform_admin(request):
            qs = qs.filter(organization_id=request.user.organization_id)
        return qs

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), DeletedFilter]

    def delete_model(self, request, obj):
        from core.services import soft_delete

        soft_delete(actor=request.user, instance=obj, action=self._action(obj, "deleted"))

    @admin.action(description="Restore selected (undo soft delete)")
    def restore_selected(self, request, queryset):
        from core.services import restore

        count = 0
        for obj in queryset.filter(deleted_at__isnull=False):
            restore(actor=request.user, instance=obj, action=self._action(obj, "restored"))
            count += 1
        self.message_user(request, f"Restored {count} row(s).", messages.SUCCESS)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Live"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset
