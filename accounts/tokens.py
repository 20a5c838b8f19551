"""Access tokens die with the session: each token carries its user's ``token_version``.

Access JWTs are stateless and live ``JWT_ACCESS_MINUTES``; blacklisting refresh tokens alone
leaves them working that long after a logout, password change or deactivation. Those events
raise ``User.token_version`` (``accounts.services.revoke_access_tokens``), and every
authentication (REST and WebSocket) compares the token's claim with the user row it loads
anyway: no extra query, no cache round trip, and it holds with Redis down.

The other sessions of the user lose their access tokens too; their refresh tokens stay valid
(only the presented one is blacklisted on logout) and the next refresh issues tokens with the
new version. Tokens minted without the claim count as version 0.
"""

from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

TOKEN_VERSION_CLAIM = "tv"
SESSION_CLAIM = "sid"  # the LoginSession the token belongs to (copied into its access tokens)


def tokens_for(user, session=None, claims: dict | None = None) -> dict:
    """A fresh refresh/access pair for ``user`` carrying its current token version.

    With ``session`` (a ``LoginSession``) the tokens carry its id and the session learns its new
    refresh token. ``RefreshToken.for_user`` records the outstanding token before a claim can be added, so the
    refresh is built here with every claim first and then recorded, as ``for_user`` does.
    """
    refresh = RefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = str(getattr(user, api_settings.USER_ID_FIELD))
    refresh[TOKEN_VERSION_CLAIM] = user.token_version
    for name, value in (claims or {}).items():
        refresh[name] = value
    if session is not None:
        refresh[SESSION_CLAIM] = str(session.pk)
        session.refresh_jti = refresh[api_settings.JTI_CLAIM]  # the caller saves the session
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[api_settings.JTI_CLAIM],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def token_is_current(token, user) -> bool:
    """The token was issued since the user's last logout, password change or deactivation."""
    return token.get(TOKEN_VERSION_CLAIM, 0) == user.token_version
