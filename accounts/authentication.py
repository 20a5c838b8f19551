from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from accounts.models import Role, User
from accounts.tokens import token_is_current

_BASE: list = []  # the PostgreSQL query, built once per process (building it cost more than running it)


def _base_queryset():
    if not _BASE:
        roles = Role.objects.filter(memberships__user=OuterRef("pk")).order_by("slug")
        _BASE.append(
            User.objects.select_related("organization", "department").annotate(
                role_rows_json=ArraySubquery(roles.values(row=JSONObject(slug="slug", permissions="permissions")))
            )
        )
    return _BASE[0]


def user_with_roles(user_id) -> User | None:
    """The user with its organization, department and roles: one query on PostgreSQL.

    Every authenticated request needs the user and its roles (permission codes, ``auth/me``); the
    roles come as an array subquery in the same statement instead of a second round trip, and
    the department (``auth/me``, routing) as a join. Other databases (the embedded SQLite
    default) load the roles on first use, as ``User._roles`` does.
    """
    if connection.vendor != "postgresql":
        return User.objects.select_related("organization", "department").filter(pk=user_id).first()
    user = _base_queryset().filter(pk=user_id).first()
    if user is not None:
        user.prime_roles([(row["slug"], row["permissions"]) for row in user.role_rows_json])
    return user


class ActiveUserJWTAuthentication(JWTAuthentication):
    """Bearer JWT; the user is loaded with its organization and roles, must still be active, and the
    token must carry the user's current token version (one query: the same row)."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise AuthenticationFailed("Token contained no recognizable user identification.") from None
        user = user_with_roles(user_id)
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
        if not token_is_current(validated_token, user):
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        return user
