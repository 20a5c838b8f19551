from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from accounts import auth_cache
from accounts.models import Role, User
from accounts.tokens import token_is_current
from core.compiled_query import CompiledQuery
from core.throttling import hits_ahead, record_ahead


def _base_queryset():
    roles = Role.objects.filter(memberships__user=OuterRef("pk")).order_by("slug")
    return User.objects.select_related("organization", "department").annotate(
        role_rows_json=ArraySubquery(roles.values(row=JSONObject(slug="slug", permissions="permissions")))
    )


# Issue 14: compiling this statement cost more than running it (a quarter of a GET auth/me's CPU
# in a profile), so it is compiled once per process; the rows it returns are what the process
# keeps per user (accounts/auth_cache.py), each request building its own instances from them.
_USER = CompiledQuery(lambda pk: _base_queryset().filter(pk=pk))


def _fetch_row(pk) -> tuple | None:
    rows = _USER.fetch_rows(pk=pk)
    return rows[0] if rows else None


def _build_user(row: tuple, pk) -> User:
    """New instances from a row as the database returned it (the cached row is shared by the
    threads: every request builds its own user, organization and department from it)."""
    (user,) = _USER.from_rows([row], pk=pk)
    user.prime_roles([(role["slug"], role["permissions"]) for role in user.role_rows_json])
    return user


def _fetch_user(pk) -> User | None:
    row = _fetch_row(pk)
    return None if row is None else _build_user(row, pk)


def user_with_roles(user_id) -> User | None:
    """The user with its organization, department and roles: one query on PostgreSQL.

    Every authenticated request needs the user and its roles (permission codes, ``auth/me``); the
    roles come as an array subquery in the same statement instead of a second round trip, and
    the department (``auth/me``, routing) as a join. Other databases (the embedded SQLite
    default) load the roles on first use, as ``User._roles`` does.
    """
    if connection.vendor != "postgresql":
        return User.objects.select_related("organization", "department").filter(pk=user_id).first()
    try:
        pk = User._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    return _fetch_user(pk)


class ActiveUserJWTAuthentication(JWTAuthentication):
    """Bearer JWT; the user is loaded with its organization and roles, must still be active, and the
    token must carry the user's current token version (one query: the same row).

    On PostgreSQL with Redis the row comes from the process's copy while the revocation stamps
    say it is current (accounts/auth_cache.py): the stamps and the throttle's hit are one Redis
    round trip, and a warm request makes no query.
    """

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        validated_token = self.get_validated_token(raw_token)
        return self._user_for(validated_token, request), validated_token

    def get_user(self, validated_token):
        return self._user_for(validated_token, None)

    def _user_for(self, validated_token, request):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise AuthenticationFailed("Token contained no recognizable user identification.") from None
        if request is None or connection.vendor != "postgresql":
            user = user_with_roles(user_id)
        else:
            user = _cached_user(user_id, request)
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
        if not token_is_current(validated_token, user):
            raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
        return user


def _cached_user(user_id, request) -> User | None:
    try:
        pk = User._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    ident = str(pk)
    planned = hits_ahead(request, ident)
    row, counts = auth_cache.cached_row(ident, [(key, ttl) for _k, _w, key, ttl in planned], lambda: _fetch_row(pk))
    if counts is not None:
        record_ahead(request, planned, counts)
    return None if row is None else _build_user(row, pk)
