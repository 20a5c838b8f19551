"""Admin plumbing: staff users who are not superusers see and edit only their organization.

Access to an admin page is granted by the role catalog (``admin_permission_code``),
not by Django's per-model permissions, so there is one source of truth for RBAC.

The admin is a client of the services: every create, change and delete goes through the
same service as the API (validation, audit action names and side effects identical). A model
admin that allows writes implements ``create_via_service``/``update_via_service``/
``delete_via_service``; the base never writes a model itself. A service's refusal is shown
on the form (``ValidationFailed`` on its fields, ``Conflict`` above them) with nothing saved,
and a ``Forbidden`` answers 403.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect

from core.exceptions import ApplicationError, Forbidden


class ServiceRefused(Exception):
    """Carries a service's ApplicationError out of the admin's transaction, which it rolls back."""

    def __init__(self, error: ApplicationError):
        super().__init__(error.message)
        self.error = error


def call_service(func, **kwargs):
    """Run a service for the admin; its refusal rolls the whole admin change back (ServiceRefused)."""
    try:
        return func(**kwargs)
    except ApplicationError as exc:
        raise ServiceRefused(exc) from exc


def refusal_text(exc: ApplicationError) -> str:
    parts = [f"{key}: {' '.join(str(m) for m in msgs)}" for key, msgs in (exc.details or {}).items()]
    return f"{exc.message} " + " | ".join(parts) if parts else exc.message


def _with_refusal(form_class, error: ApplicationError):
    """The same form class, showing the service's refusal: field errors where the field is on the form."""

    class RefusedForm(form_class):
        def _post_clean(self):
            super()._post_clean()
            details = error.details if isinstance(error.details, dict) else {}
            shown = False
            for key, msgs in details.items():
                name = key.removesuffix("_id")
                if name in self.fields:
                    self.add_error(name, [str(m) for m in msgs])
                    shown = True
            if not shown:
                self.add_error(None, refusal_text(error))

    RefusedForm.__name__ = form_class.__name__
    return RefusedForm


def _is_platform_admin(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class ReadOnlyMixin:
    """An admin page or inline that only shows rows (requests, tasks, deliveries): no add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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

    # --- writes: through the services ---------------------------------------------------
    def _action(self, obj, verb: str) -> str:
        prefix = self.audit_action_prefix or obj._meta.model_name
        return f"{prefix}.{verb}"

    def organization_for(self, request, form):
        """Where a new row goes: the staff user's organization; a platform admin picks it."""
        if _is_platform_admin(request) and "organization" in form.cleaned_data:
            return form.cleaned_data["organization"]
        return request.user.organization

    @staticmethod
    def changed(form, names) -> dict:
        """The form's changed values among ``names`` (what the service is asked to change)."""
        return {name: form.cleaned_data[name] for name in form.changed_data if name in names}

    def create_via_service(self, request, form):
        """Create the row through its service and return it."""
        raise NotImplementedError(f"{type(self).__name__} creates rows only through a service")

    def update_via_service(self, request, stored, form) -> None:
        """Change ``stored`` (the row as in the database) through its service."""
        raise NotImplementedError(f"{type(self).__name__} changes rows only through a service")

    def delete_via_service(self, request, obj) -> None:
        raise NotImplementedError(f"{type(self).__name__} deletes rows only through a service")

    def save_model(self, request, obj, form, change):
        if change:
            # ``obj`` already carries the form's values; the service compares against the stored row.
            saved = self.model._base_manager.get(pk=obj.pk)
            self.update_via_service(request, saved, form)
        else:
            saved = self.create_via_service(request, form)
        # The admin goes on with ``obj`` (messages, log entry, inlines): make it the saved row.
        obj.pk = saved.pk
        obj._state.adding = False
        obj._state.db = saved._state.db

    def delete_model(self, request, obj):
        self.delete_via_service(request, obj)

    def delete_queryset(self, request, queryset):
        # All or nothing: one refusal rolls the batch back and is reported (response_action).
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)

    # --- a service's refusal ------------------------------------------------------------
    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        return _with_refusal(form_class, refusal) if refusal is not None else form_class

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            if isinstance(refused.error, Forbidden):
                raise PermissionDenied(refused.error.message) from None
            # Everything was rolled back; render the same post again with the refusal on the form.
            request._service_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceRefused as refused:
            if isinstance(refused.error, Forbidden):
                raise PermissionDenied(refused.error.message) from None
            self.message_user(request, f"Not deleted: {refusal_text(refused.error)}", messages.ERROR)
            return HttpResponseRedirect(request.path)

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except ServiceRefused as refused:
            if isinstance(refused.error, Forbidden):
                raise PermissionDenied(refused.error.message) from None
            self.message_user(request, f"Nothing changed: {refusal_text(refused.error)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class SoftDeleteAdmin(OrgScopedAdmin):
    """Lists deleted rows too (filter "Deleted"); deletes and restores through the model's services."""

    actions = ["restore_selected"]

    def get_queryset(self, request):
        qs = self.model.all_objects.get_queryset()
        if not _is_platform_admin(request):
            qs = qs.filter(organization_id=request.user.organization_id)
        return qs

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), DeletedFilter]

    def restore_via_service(self, request, obj) -> None:
        """Undo ``obj``'s soft delete through its service (deleting is ``delete_via_service``)."""
        raise NotImplementedError(f"{type(self).__name__} restores rows only through a service")

    @admin.action(description="Restore selected (undo soft delete)")
    def restore_selected(self, request, queryset):
        # All or nothing, like a delete of several rows: a refusal is reported (response_action).
        with transaction.atomic():
            count = 0
            for obj in queryset.filter(deleted_at__isnull=False):
                self.restore_via_service(request, obj)
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
