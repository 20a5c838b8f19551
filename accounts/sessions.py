"""Login sessions (docs/security.md, "Sessions"): one row per login on a device, the chain of
refresh tokens it rotates through. One transaction each, audited under ``auth.*``.

Every login (password, password + second factor, single sign-on) starts one with ``session_start``;
a refresh moves it on (``session_rotate``); ending it blacklists its live refresh token and raises
the user's token version, so its access tokens die too (the user's other sessions refresh into
new ones).
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import auth_cache
from accounts.models import LoginSession, User
from accounts.tokens import tokens_for
from auditlogs.services import audit_record
from core import context
from core.exceptions import NotFound


def _client() -> dict:
    ctx = context.current()
    return {"ip": ctx.ip or None, "user_agent": (ctx.user_agent or "")[:300]}


def session_start(*, user: User, method: str = "password", claims: dict | None = None) -> dict:
    """A new session and its first token pair; call inside the login's transaction."""
    session = LoginSession(user=user, organization_id=user.organization_id, method=method, **_client())
    tokens = tokens_for(user, session, claims)
    session.save()
    return tokens


def session_rotate(*, user: User, session_id, claims: dict | None = None) -> dict:
    """The next token pair of a session (inside the refresh's transaction, after the old token died).

    A token from before sessions existed (no ``sid``) gets a session now. ``claims`` are the
    restrictions the old token carried (they outlive the rotation).
    """
    session = LoginSession.objects.filter(pk=session_id, user=user).first() if session_id else None
    if session is None:
        return session_start(user=user, claims=claims)
    tokens = tokens_for(user, session, claims)
    for name, value in _client().items():
        setattr(session, name, value)
    session.last_used_at = timezone.now()
    session.ended_at = None
    session.save(update_fields=["refresh_jti", "last_used_at", "ip", "user_agent", "ended_at"])
    return tokens


def end_sessions(queryset) -> int:
    """Blacklist the live refresh token of each session and mark it ended (no audit: the caller's)."""
    sessions = list(queryset.filter(ended_at__isnull=True).select_for_update())
    jtis = [s.refresh_jti for s in sessions if s.refresh_jti]
    live = OutstandingToken.objects.filter(jti__in=jtis)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in live], ignore_conflicts=True)
    LoginSession.objects.filter(pk__in=[s.pk for s in sessions]).update(ended_at=timezone.now())
    return len(sessions)


def revoke_access_tokens(*, user: User) -> None:
    """Every access token issued to ``user`` so far stops working (accounts/tokens.py)."""
    User.objects.filter(pk=user.pk).update(token_version=F("token_version") + 1)
    auth_cache.user_changed(user.pk)
    user.refresh_from_db(fields=["token_version"])


def revoke_sessions(*, user: User) -> None:
    """Every session and token of ``user``, refresh and access: after a password change or reset,
    a deactivation, logout from everywhere."""
    end_sessions(LoginSession.objects.filter(user=user))
    # Tokens from before sessions existed, or issued outside one (tests, commands), die too.
    live = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in live], ignore_conflicts=True)
    revoke_access_tokens(user=user)


def session_end(*, user: User, session_id) -> None:
    """End one of ``user``'s sessions (another user's id is a 404)."""
    with transaction.atomic():
        ended = end_sessions(LoginSession.objects.filter(pk=session_id, user=user))
        if not ended:
            raise NotFound("No such active session.")
        revoke_access_tokens(user=user)
        audit_record(action="auth.session_ended", actor=user, target=user, changes={"session": [str(session_id), None]})


def logout_all(*, user: User) -> int:
    """End every session of ``user``: every refresh token blacklisted, every access token dead."""
    with transaction.atomic():
        ended = LoginSession.objects.filter(user=user, ended_at__isnull=True).count()
        revoke_sessions(user=user)
        audit_record(action="auth.logout_all", actor=user, target=user, changes={"sessions": [ended, 0]})
    return ended
