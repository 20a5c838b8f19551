import copy

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow

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


# Issue 14: checking a bearer token's signature and claims was a tenth of a served GET auth/me's
# CPU (PyJWT inspects the key's form and recomputes the HMAC on every call). A token string that
# verified once verifies again until it expires, so each process keeps the verified token by the
# exact string it came as and checks only its expiry again. Revocation does not depend on this:
# the token version is checked against the user row on every request (``_user_for``).
_VERIFIED: dict[bytes, Token] = {}
_VERIFIED_MAX = 10_000


def _verified_again(raw_token: bytes) -> Token | None:
    token = _VERIFIED.get(raw_token)
    if token is None:
        return None
    now = aware_utcnow()
    try:
        token.check_exp(current_time=now)
    except TokenError:
        _VERIFIED.pop(raw_token, None)
        return None  # verified from scratch: the caller gets simplejwt's own error
    again = copy.copy(token)  # each request its own token object (request.auth)
    again.payload, again.current_time = dict(token.payload), now
    return again


def _remember_verified(raw_token: bytes, token: Token) -> None:
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    kept = copy.copy(token)
    kept.payload = dict(token.payload)
    _VERIFIED[raw_token] = kept


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

    def get_validated_token(self, raw_token):
        token = _verified_again(raw_token)
        if token is None:
            token = super().get_validated_token(raw_token)
            _remember_verified(raw_token, token)
        return token

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
