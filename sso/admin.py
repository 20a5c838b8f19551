from django import forms
from django.contrib import admin

from core.admin import OrgScopedAdmin, call_service
from sso import services
from sso.models import OIDCProvider


class OIDCProviderForm(forms.ModelForm):
    """Lists as comma-separated text; the secret is write-only (blank keeps the stored one)."""

    issuer = forms.URLField(max_length=300, assume_scheme="https")
    allowed_domains = forms.CharField(required=False, help_text="Comma-separated, e.g. acme.example, acme.test.")
    jit_roles = forms.CharField(required=False, help_text="Comma-separated role slugs a created account gets.")
    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Blank keeps the stored secret."
    )

    class Meta:
        model = OIDCProvider
        fields = [
            "organization",
            "enabled",
            "issuer",
            "client_id",
            "client_secret",
            "allowed_domains",
            "jit_create",
            "jit_department",
            "jit_roles",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("allowed_domains", "jit_roles"):
            self.initial[name] = ", ".join(getattr(self.instance, name) or [])

    def _split(self, name):
        return [part.strip() for part in self.cleaned_data.get(name, "").split(",") if part.strip()]

    def clean_allowed_domains(self):
        return self._split("allowed_domains")

    def clean_jit_roles(self):
        return self._split("jit_roles")


@admin.register(OIDCProvider)
class OIDCProviderAdmin(OrgScopedAdmin):
    """The organization's single sign-on; saved through ``sso.services.oidc_provider_save``."""

    admin_permission_code = "org.manage"
    form = OIDCProviderForm
    list_display = ["organization", "issuer", "client_id", "enabled", "jit_create"]

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        return (
            request.user.is_superuser
            or not OIDCProvider.objects.filter(organization_id=request.user.organization_id).exists()
        )

    def create_via_service(self, request, form):
        return call_service(
            services.oidc_provider_save,
            actor=request.user,
            organization=self.organization_for(request, form),
            client_secret=form.cleaned_data["client_secret"],
            **{name: form.cleaned_data[name] for name in services.CONFIG_FIELDS},
        )

    def update_via_service(self, request, stored, form):
        call_service(
            services.oidc_provider_save,
            actor=request.user,
            organization=stored.organization_id,
            client_secret=form.cleaned_data["client_secret"] or None,
            **self.changed(form, services.CONFIG_FIELDS),
        )

    def delete_via_service(self, request, obj):
        call_service(services.oidc_provider_delete, actor=request.user, provider=obj)
