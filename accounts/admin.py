from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from accounts.models import Role, RoleMembership, User
from core.admin import OrgScopedAdmin


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class RoleMembershipInline(admin.TabularInline):
    model = RoleMembership
    extra = 0
    fields = ["role"]
    autocomplete_fields: list[str] = []

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

    def save_formset(self, request, form, formset, change):
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
