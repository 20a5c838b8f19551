"""WebSocket auth: an access JWT in ``?token=`` or as a ``Sec-WebSocket-Protocol`` value.

On failure the scope carries an anonymous user and ``auth_error``; consumers close with 4401.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.tokens import token_is_current
from core.permissions import MFA_SETUP_CLAIM


def _token_from_scope(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode())
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name == b"sec-websocket-protocol":
            for proto in value.decode().split(","):
                proto = proto.strip()
                if proto.count(".") == 2:  # a JWT, not a sub-protocol name
                    return proto
    return None


@database_sync_to_async
def _user_for(token: str):
    try:
        access = AccessToken(token)
    except TokenError:
        return None
    if access.get(MFA_SETUP_CLAIM):
        return None  # tokens of a login that still owes its second factor open only auth/ endpoints
    user = User.objects.select_related("organization").filter(pk=access.get("user_id"), is_active=True).first()
    return user if user is not None and token_is_current(access, user) else None


class JWTAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        token = _token_from_scope(scope)
        user = await _user_for(token) if token else None
        scope["user"] = user or AnonymousUser()
        scope["token_subprotocol"] = (
            token if token and token not in (scope.get("query_string") or b"").decode() else None
        )
        if user is None:
            scope["auth_error"] = "missing token" if not token else "invalid or expired token"
        return await super().__call__(scope, receive, send)
