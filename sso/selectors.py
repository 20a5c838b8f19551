from sso.models import OIDCProvider


def enabled_provider(*, org_slug: str) -> OIDCProvider | None:
    """The enabled OIDC provider of the organization with this slug (None: no single sign-on there)."""
    return (
        OIDCProvider.objects.select_related("organization")
        .filter(organization__slug=org_slug, organization__is_active=True, enabled=True)
        .first()
    )
