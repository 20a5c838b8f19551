from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import privileges, services
from accounts.catalog import ROLES_MANAGE
from accounts.models import Role, RoleMembership, User
from core.admin import OrgScopedAdmin
from core.exceptions import Forbidden


def _guarded(check, **kwargs) -> None:
    """The API's privilege checks, answered as the admin's 403 (the change view's transaction rolls back)."""
    try:
        check(**kwargs)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class PasswordSetForm(AdminPasswordChangeForm):
    """The admin's password page: a new password ends every session of the user, as via the API."""

    def save(self, commit=True):
        with transaction.atomic():
            user = super().save(commit=commit)
            if commit:
                services.revoke_sessions(user=user)
        return user


class RoleMembershipInline(admin.TabularInline):
    model = RoleMembership
    extra = 0
    fields = ["role"]
    autocomplete_fields: list[str] = []

    # Like every admin page, access comes from the role catalog (roles.manage), not Django's model
    # permissions; what may be granted is checked on save (UserAdmin.save_formset).
    def _may_manage_roles(self, request, obj=None) -> bool:
        user = request.user
        return user.is_active and (user.is_superuser or (user.is_staff and user.has_code(ROLES_MANAGE)))

    has_view_permission = has_add_permission = has_change_permission = has_delete_permission = _may_manage_roles

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "role" and not request.user.is_superuser:
            field.queryset = field.queryset.filter(organization_id=request.user.organization_id)
        return field


@admin.register(User)
class UserAdmin(OrgScopedAdmin, DjangoUserAdmin):
    admin_permission_code = "users.manage"
    audit_action_prefix = "user"
    form = UserEditForm
    add_form = UserCreateForm
    change_password_form = PasswordSetForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "organization", "department", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "department"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined", "deactivated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["first_name", "last_name", "title", "organization", "department", "manager"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined", "deactivated_at"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2", "organization"]})]
    inlines = [RoleMembershipInline]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Org staff never see tenancy or platform-level switches.
        hidden = {"organization", "is_superuser"}
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]}) for name, opts in fieldsets]

    def get_inlines(self, request, obj):
        # Roles are given on the change page, once the user exists (the add page asks for the login only).
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        stored = User.objects.filter(pk=obj.pk).first() if change else None
        _guarded(
            privileges.check_flags_change,
            actor=request.user,
            user=stored,
            is_staff=obj.is_staff,
            is_superuser=obj.is_superuser,
        )
        super().save_model(request, obj, form, change)
        if stored is not None and stored.is_active and not obj.is_active:
            services.revoke_sessions(user=obj)  # deactivated here: every token dies, as via the API

    def save_formset(self, request, form, formset, change):
        if formset.model is RoleMembership:
            granted = [
                f.cleaned_data["role"]
                for f in formset.forms
                if f.has_changed() and f.cleaned_data.get("role") and not f.cleaned_data.get("DELETE")
            ]
            _guarded(privileges.check_roles_grantable, actor=request.user, roles=granted)
        for inline_form in formset.forms:
            if inline_form.instance and not inline_form.instance.organization_id:
                inline_form.instance.organization_id = form.instance.organization_id
        super().save_formset(request, form, formset, change)


@admin.register(Role)
class RoleAdmin(OrgScopedAdmin):
    admin_permission_code = "roles.manage"
    audit_action_prefix = "role"
    list_display = ["slug", "name", "organization", "is_builtin"]
    search_fields = ["slug", "name"]
    readonly_fields = ["is_builtin"]

    def save_model(self, request, obj, form, change):
        stored = Role.objects.filter(pk=obj.pk).values_list("permissions", flat=True).first() if change else None
        _guarded(
            privileges.check_role_codes_change,
            actor=request.user,
            before=stored or [],
            after=obj.permissions or [],
        )
        super().save_model(request, obj, form, change)
