import django_filters

from core.filters import FilterSet
from sso.models import OIDCLoginAttempt


class CallbackParams(FilterSet):
    """``GET auth/oidc/callback/``: what the provider appends to the redirect (RFC 6749 4.1.2)."""

    state = django_filters.CharFilter(method="keep", max_length=128, help_text="The sign-in's state.")
    code = django_filters.CharFilter(method="keep", max_length=2048, help_text="The authorization code.")
    error = django_filters.CharFilter(method="keep", max_length=200, help_text="The provider's refusal, if any.")

    class Meta:
        model = OIDCLoginAttempt
        fields = ["state", "code", "error"]

    def keep(self, queryset, name, value):
        return queryset


class LoginParams(FilterSet):
    """``GET auth/oidc/<org-slug>/login/?next=admin``: sign in to the admin site instead of the API."""

    next = django_filters.ChoiceFilter(choices=[("admin", "admin")], method="keep", help_text="admin, or absent.")

    class Meta:
        model = OIDCLoginAttempt
        fields = ["next"]

    def keep(self, queryset, name, value):
        return queryset
