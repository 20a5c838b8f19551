"""Users and roles in the admin: every write through accounts.services, as the API does (and so
the same privilege checks: a refusal answers 403 and changes nothing)."""

from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.db import transaction

from accounts import mfa, services
from accounts.catalog import ROLES_MANAGE
from accounts.models import Role, RoleMembership, SecurityPolicy, User
from accounts.password_policy import validate_new_password
from core.admin import OrgScopedAdmin, call_service
from core.exceptions import ApplicationError, ValidationFailed

# What the user service changes; e-mail, organization and is_superuser have no service to change them.
USER_EDITABLE = ["first_name", "last_name", "title", "department", "manager", "is_staff"]
ROLE_EDITABLE = ["slug", "name", "description", "permissions"]


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login: the lockout applies, and a user with 2FA on gives a code too. Where the
    organization requires 2FA of staff, staff without it are refused (they set it up by the API)."""

    otp_code = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=32,
        help_text="The 6-digit code of your authenticator app (or a recovery code), if two-factor is on.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self):
        email = (self.cleaned_data.get("username") or "").strip()
        known = User.objects.filter(email__iexact=email).first() if email else None
        try:
            services.check_not_locked(known)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code="account_locked") from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            services.login_failed(email=email, known=known)  # counts toward the lockout, as the API's
            raise
        user = self.get_user()
        if user is None:
            return cleaned
        if mfa.has_2fa(user):
            try:
                with transaction.atomic():
                    mfa.check_code(user=user, code=self.cleaned_data.get("otp_code") or "")
            except ApplicationError:
                raise forms.ValidationError(mfa.WRONG_CODE, code="invalid_code") from None
        elif mfa.must_have_2fa(user):
            raise forms.ValidationError(
                "Your organization requires two-factor authentication for the admin: set it up first "
                "(POST /api/v1/auth/2fa/totp/).",
                code="mfa_enrolment_required",
            )
        return cleaned


admin.site.login_form = AdminLoginForm

# Access comes from roles (accounts/catalog.py); Django's groups are not used, so not offered.
admin.site.unregister(Group)


class UserCreateForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


# Who is setting the password: Django's view builds the form without the request.
_password_actor: ContextVar = ContextVar("password_actor", default=None)


class PasswordSetForm(AdminPasswordChangeForm):
    """The admin's password page, through ``services.password_set``: the organization's password
    policy applies, every session of the user ends and the user is told by e-mail, as via the API.

    Turning password login off (Django's "usable password" switch) is not offered: deactivation is
    the way to shut an account.
    """

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields.pop("usable_password", None)
        self.fields["password1"].required = self.fields["password2"].required = True

    def validate_password_for_user(self, user, password_field_name="password2"):  # noqa: S107 - a field name
        password = self.cleaned_data.get(password_field_name)
        if password:
            try:
                validate_new_password(user=user, password=password, field=password_field_name)
            except ValidationFailed as exc:
                for message in exc.details.get(password_field_name, []):
                    self.add_error(password_field_name, message)

    def save(self, commit=True):
        return services.password_set(
            actor=_password_actor.get(), user=self.user, new_password=self.cleaned_data["password1"]
        )


class RoleMembershipInline(admin.TabularInline):
    model = RoleMembership
    extra = 0
    fields = ["role"]
    autocomplete_fields: list[str] = []

    # Like every admin page, access comes from the role catalog (roles.manage), not Django's model
    # permissions; what may be granted is checked on save by the services (UserAdmin.save_formset).
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
    list_filter = ["is_active", "is_staff", "department", ("locked_until", admin.EmptyFieldListFilter)]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined", "deactivated_at", "locked_until"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["first_name", "last_name", "title", "organization", "department", "manager"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined", "deactivated_at", "locked_until"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2", "organization"]})]
    inlines = [RoleMembershipInline]
    actions = ["deactivate_selected", "unlock_selected", "reset_2fa_selected"]

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

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "email", "organization", "is_superuser"] if obj is not None else fields

    def user_change_password(self, request, id, form_url=""):
        token = _password_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    def has_delete_permission(self, request, obj=None):
        return False  # a user is deactivated (the API's DELETE), never removed: the history points at them

    def create_via_service(self, request, form):
        return call_service(
            services.user_create,
            actor=request.user,
            organization=self.organization_for(request, form),
            email=form.cleaned_data["email"],
            password=form.cleaned_data.get("password1") or None,
        )

    def update_via_service(self, request, stored, form):
        changed = self.changed(form, USER_EDITABLE)
        if changed:
            call_service(services.user_update, actor=request.user, user=stored, **changed)
        if "is_active" in form.changed_data:
            toggle = services.user_reactivate if form.cleaned_data["is_active"] else services.user_deactivate
            call_service(toggle, actor=request.user, user=stored)

    def save_formset(self, request, form, formset, change):
        """Role memberships through role_member_add/remove (and their privilege checks)."""
        user = User.objects.get(pk=form.instance.pk)
        for index, row in enumerate(formset.forms):
            # The form already put its choice on ``row.instance``: the stored role is in ``initial``.
            stored_id = row.initial.get("role") if index < formset.initial_form_count() else None
            wanted = None if formset._should_delete_form(row) else row.cleaned_data.get("role")
            if stored_id == getattr(wanted, "pk", None):
                continue
            if stored_id is not None:
                stored = Role.objects.get(pk=stored_id)
                call_service(services.role_member_remove, actor=request.user, role=stored, user=user)
            if wanted is not None:
                call_service(services.role_member_add, actor=request.user, role=wanted, user=user)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Deactivate selected users")
    def deactivate_selected(self, request, queryset):
        count = 0
        with transaction.atomic():  # all or none: a refusal (oneself) is reported by response_action
            for user in queryset.filter(is_active=True):
                call_service(services.user_deactivate, actor=request.user, user=user)
                count += 1
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Unlock selected users (lift a login lockout)")
    def unlock_selected(self, request, queryset):
        count = 0
        with transaction.atomic():
            for user in queryset.filter(locked_until__isnull=False):
                call_service(services.user_unlock, actor=request.user, user=user)
                count += 1
        self.message_user(request, f"Unlocked {count} user(s).", messages.SUCCESS)

    @admin.action(description="Turn off two-factor of selected users (lost authenticator)")
    def reset_2fa_selected(self, request, queryset):
        count = 0
        with transaction.atomic():  # all or none: a refusal (a more privileged user) is reported
            for user in queryset:
                count += call_service(mfa.totp_reset, actor=request.user, user=user)
        self.message_user(request, f"Two-factor turned off for {count} user(s).", messages.SUCCESS)


@admin.register(SecurityPolicy)
class SecurityPolicyAdmin(OrgScopedAdmin):
    """The organization's password, lockout and two-factor rules (one row; the defaults until saved)."""

    admin_permission_code = "org.manage"
    list_display = ["organization", "password_min_length", "password_history", "lockout_threshold", "require_2fa"]

    def has_delete_permission(self, request, obj=None):
        return False  # the defaults are a row's absence; change the values instead

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        # One per organization: org staff add it once, a platform admin for any organization.
        return (
            request.user.is_superuser
            or not SecurityPolicy.objects.filter(organization_id=request.user.organization_id).exists()
        )

    def create_via_service(self, request, form):
        return call_service(
            services.security_policy_update,
            actor=request.user,
            organization=self.organization_for(request, form),
            **{f: form.cleaned_data[f] for f in services.POLICY_FIELDS},
        )

    def update_via_service(self, request, stored, form):
        call_service(
            services.security_policy_update,
            actor=request.user,
            organization=stored.organization_id,
            **self.changed(form, services.POLICY_FIELDS),
        )


@admin.register(Role)
class RoleAdmin(OrgScopedAdmin):
    admin_permission_code = "roles.manage"
    audit_action_prefix = "role"
    list_display = ["slug", "name", "organization", "is_builtin"]
    search_fields = ["slug", "name"]
    readonly_fields = ["is_builtin"]

    def create_via_service(self, request, form):
        return call_service(
            services.role_create,
            actor=request.user,
            organization=self.organization_for(request, form),
            **{f: form.cleaned_data[f] for f in ROLE_EDITABLE},
        )

    def update_via_service(self, request, stored, form):
        call_service(services.role_update, actor=request.user, role=stored, **self.changed(form, ROLE_EDITABLE))

    def delete_via_service(self, request, obj):
        call_service(services.role_delete, actor=request.user, role=obj)
