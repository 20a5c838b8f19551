"""Single sign-on with OpenID Connect (docs/security.md, "Single sign-on")."""

from django.db import models
from django.utils import timezone

from core.models import TenantQuerySet, TimeStampedModel, UUIDModel


class OIDCProvider(TimeStampedModel):
    """An organization's identity provider: who may sign in through it, and what a newcomer gets."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="oidc_provider"
    )
    enabled = models.BooleanField(default=True)
    issuer = models.URLField(max_length=300, help_text="The provider's issuer URL (its discovery document's 'issuer').")
    client_id = models.CharField(max_length=200)
    client_secret = models.CharField(max_length=300, blank=True)
    allowed_domains = models.JSONField(
        default=list, blank=True, help_text="E-mail domains allowed to sign in (lower case); empty: none."
    )
    jit_create = models.BooleanField(
        default=False, help_text="Create an account on the first sign-in of an unknown (allowed) e-mail."
    )
    jit_department = models.ForeignKey(
        "organizations.Department", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    jit_roles = models.JSONField(default=list, blank=True, help_text="Slugs of the roles a created account gets.")

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "OIDC provider"

    def __str__(self):
        return f"OIDC {self.issuer}"


class OIDCLoginAttempt(UUIDModel):
    """One authorization request in flight: its state, nonce and PKCE verifier, used once."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(OIDCProvider, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    code_verifier = models.CharField(max_length=128)
    redirect_uri = models.URLField(max_length=500)
    # "api": the callback answers the token pair; "admin": it opens an admin-site session.
    purpose = models.CharField(max_length=8, default="api")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantQuerySet.as_manager()
