from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from accounts.models import LoginSession, Role, RoleMembership, User


def users_for(*, organization):
    return User.objects.for_organization(organization).select_related("department", "manager", "organization")


def roles_for(*, organization):
    return Role.objects.for_organization(organization)


def role_members(*, role):
    return (
        RoleMembership.objects.for_organization(role.organization_id)
        .filter(role=role)
        .select_related("user")
        .order_by("user__email")
    )


def users_with_role(*, organization, slug: str):
    return User.objects.for_organization(organization).filter(
        is_active=True, role_memberships__role__slug=slug, role_memberships__role__organization=organization
    )


def user_id_by_email(*, organization, email: str):
    """The id of the organization's user with this e-mail (any case), or None."""
    return User.objects.for_organization(organization).filter(email__iexact=email).values_list("pk", flat=True).first()


def active_sessions(*, organization, user) -> QuerySet[LoginSession]:
    """``user``'s sessions that can still refresh: not ended, used within the refresh lifetime."""
    since = timezone.now() - api_settings.REFRESH_TOKEN_LIFETIME
    sessions = LoginSession.objects.for_organization(organization)
    return sessions.filter(user=user, ended_at__isnull=True, last_used_at__gte=since).order_by("-last_used_at")
